"""Recipes: parse -> print round trips, counting, and errors that point at the bad token."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from doubledip.classical.recipe import ITERATIONS, OPERATIONS, Recipe, RecipeError, Term, parse
from doubledip.errors import ConfigError

CANONICAL = [
    "20*ER + 3*(180*HIO + SW) + 200*ER",
    "ER",
    "100*HIO + 45*(20*HIO + SW) + 100*RAAR + 200*ER",
    "2*(3*(HIO + SW) + ER) + OSS + 5*DM",
]


@pytest.mark.parametrize("text", CANONICAL)
def test_canonical_text_prints_back_unchanged(text):
    assert str(parse(text)) == text


@pytest.mark.parametrize(
    "messy, canonical",
    [
        ("20 * er+3*( 180*hio+sw )+200*ER", "20*ER + 3*(180*HIO + SW) + 200*ER"),
        ("(ER + HIO)", "ER + HIO"),
        ("1*ER + (((HIO)))", "ER + HIO"),
        ("2*(3*HIO)", "6*HIO"),
        ("2*((HIO + ER))", "2*(HIO + ER)"),
        ("  raar  ", "RAAR"),
    ],
)
def test_messy_text_prints_canonically(messy, canonical):
    assert str(parse(messy)) == canonical
    assert parse(messy) == parse(canonical)


def test_counts_and_steps():
    r = parse("20*ER + 3*(180*HIO + SW) + 200*ER")
    assert r.iterations == 20 + 3 * 180 + 200
    assert r.counts() == {"ER": 220, "HIO": 540, "SW": 3}
    steps = list(r.steps())
    assert len(steps) == r.iterations + 3
    assert steps[:21] == ["ER"] * 20 + ["HIO"]
    assert steps[20 + 180] == "SW" and steps[-1] == "ER"


def _canonical(terms):
    """Normalise a generated structure the way the parser does."""
    out = []
    for count, body in terms:
        if isinstance(body, str):
            out.append(Term(count, body))
            continue
        inner = _canonical(body)
        if count == 1:
            out.extend(inner.terms)
        elif len(inner.terms) == 1:
            out.append(Term(count * inner.terms[0].count, inner.terms[0].body))
        else:
            out.append(Term(count, inner))
    return Recipe(tuple(out))


names = st.sampled_from(sorted(OPERATIONS))
counts = st.integers(min_value=1, max_value=400)
structures = st.recursive(
    st.lists(st.tuples(counts, names), min_size=1, max_size=4),
    lambda children: st.lists(st.tuples(counts, st.one_of(names, children)), min_size=1, max_size=4),
    max_leaves=12,
)


@given(structures)
def test_generated_recipes_round_trip(terms):
    recipe = _canonical(terms)
    if recipe.iterations == 0:
        with pytest.raises(RecipeError):
            parse(str(recipe))
        return
    text = str(recipe)
    assert parse(text) == recipe
    assert str(parse(text)) == text


@given(structures, st.sampled_from([" ", "", "  "]), st.booleans())
def test_spacing_and_case_do_not_matter(terms, space, lower):
    recipe = _canonical(terms)
    if recipe.iterations == 0:
        return
    text = str(recipe).replace(" + ", f"{space}+{space}").replace("*", f"{space}*{space}")
    if lower:
        text = text.lower()
    assert parse(text) == recipe


@pytest.mark.parametrize(
    "text, token, problem",
    [
        ("20*ER + 3*(180*HOI + SW) + 200*ER", "HOI", "unknown operation"),
        ("20*ER +", "", "ends where an operation"),
        ("20*ER + (HIO", "", "missing ')'"),
        ("HIO) + ER", ")", "unmatched ')'"),
        ("0*ER", "0", "at least 1"),
        ("20 ER", "ER", "expected '*'"),
        ("ER HIO", "HIO", "expected '+'"),
        ("20*ER $ HIO", "$", "unexpected character"),
        ("20*+ER", "+", "expected an operation"),
        ("3*(SW)", "3*(SW)", "no iteration"),
        ("", "", "empty"),
    ],
)
def test_bad_recipes_point_at_the_token(text, token, problem):
    with pytest.raises(RecipeError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, ConfigError)
    assert problem in str(err)
    assert err.token == token
    if token:
        assert text[err.position : err.position + len(token)] == token
    first, shown, caret = str(err).split("\n")
    assert shown.strip() == text.strip()
    assert f"column {err.position + 1}" in first
    # the caret sits under the token
    offset = shown.index(text) if text else len(shown)
    assert caret.index("^") == offset + err.position


def test_iterations_exclude_shrink_wrap():
    assert ITERATIONS == set(OPERATIONS) - {"SW"}
    assert parse("SW + 10*ER + SW").iterations == 10


def test_non_text_recipe_is_an_error():
    with pytest.raises(ConfigError):
        parse(12)


def test_a_recipe_is_applied_with_a_call():
    calls = []

    class FakeEngine:
        def run(self, recipe, callback=None):
            calls.append((str(recipe), callback))
            return self

    engine = FakeEngine()
    assert parse("2*(HIO + SW)")(engine) is engine
    assert calls == [("2*(HIO + SW)", None)]
