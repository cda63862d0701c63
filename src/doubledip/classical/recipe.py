"""Recipes: chains of classical phasing operations written as text.

A recipe such as ``"20*ER + 3*(180*HIO + SW) + 200*ER"`` is a sum of terms; a
term is an operation name or a parenthesised recipe, optionally preceded by a
repeat count and ``*``.  The grammar is::

    recipe := term ("+" term)*
    term   := [INT "*"] factor
    factor := NAME | "(" recipe ")"

Names are case-insensitive; :func:`str` prints the canonical text (upper-case
names, ``n*`` omitted when ``n`` is 1, `` + `` between terms, no redundant
parentheses), and ``parse(str(r)) == r`` for every recipe.  This is the idea of
the PyNX operator chains (``ER**20 * HIO**100``) and the cohere strings
(``3*(20*ER+180*HIO)``), kept as plain data: a recipe is applied by the engine,
never by ``*``.

A mistake raises :class:`RecipeError`, whose message names the problem and
shows the text with a caret under the offending token.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Iterator, Union

from doubledip.errors import ConfigError

__all__ = ["OPERATIONS", "ITERATIONS", "Recipe", "Term", "RecipeError", "parse"]

OPERATIONS: dict[str, str] = {
    "ER": "error reduction (Fienup 1982): project on the data, then on the support",
    "HIO": "hybrid input-output (Fienup 1982), feedback beta outside the support",
    "RAAR": "relaxed averaged alternating reflections (Luke 2005), relaxation beta",
    "DM": "difference map (Elser 2003), beta; two Fourier transform pairs per iteration",
    "OSS": "oversampling smoothness (Rodriguez et al. 2013): HIO with a shrinking Fourier filter outside the support",
    "SW": "shrink-wrap support update (Marchesini et al. 2003); not an iteration",
}
"""Operation names understood in recipes, with one line each."""

ITERATIONS = frozenset(name for name in OPERATIONS if name != "SW")
"""Operations that count as an iteration (one or more Fourier transform pairs)."""


class RecipeError(ConfigError):
    """A recipe that cannot be parsed.

    Attributes ``text``, ``position`` (0-based column) and ``token`` locate the
    mistake; ``str(err)`` is the problem on the first line, then the recipe with
    a caret under the token.
    """

    def __init__(self, text: str, position: int, token: str, problem: str):
        self.text = text
        self.position = position
        self.token = token
        self.problem = problem
        caret = " " * position + "^" * max(1, len(token))
        super().__init__(f"recipe: column {position + 1}: {problem}\n    {text}\n    {caret}")


@dataclass(frozen=True)
class Term:
    """``count`` repetitions of an operation name or of a sub-recipe."""

    count: int
    body: Union[str, "Recipe"]

    def __str__(self) -> str:
        inner = self.body if isinstance(self.body, str) else f"({self.body})"
        return inner if self.count == 1 else f"{self.count}*{inner}"


@dataclass(frozen=True)
class Recipe:
    """A chain of terms applied left to right.

    Build one with :func:`parse` (or ``Recipe.parse``); ``str(recipe)`` gives the
    canonical text back.
    """

    terms: tuple[Term, ...]

    @staticmethod
    def parse(text: str) -> "Recipe":
        return parse(text)

    def __str__(self) -> str:
        return " + ".join(str(t) for t in self.terms)

    def __call__(self, engine, callback=None):
        """Apply the recipe to an :class:`~doubledip.classical.engine.Engine`: ``recipe(engine)``."""
        return engine.run(self, callback)

    def steps(self) -> Iterator[str]:
        """Operation names in the order they run (repeats unrolled lazily)."""
        for term in self.terms:
            for _ in range(term.count):
                if isinstance(term.body, str):
                    yield term.body
                else:
                    yield from term.body.steps()

    def counts(self) -> Counter:
        """How many times each operation runs."""
        total: Counter = Counter()
        for term in self.terms:
            if isinstance(term.body, str):
                total[term.body] += term.count
            else:
                for name, n in term.body.counts().items():
                    total[name] += term.count * n
        return total

    @property
    def iterations(self) -> int:
        """Number of iterations (every operation except ``SW``)."""
        return sum(n for name, n in self.counts().items() if name in ITERATIONS)


_TOKEN = re.compile(r"\s*(?:(?P<int>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[*+()])|(?P<bad>\S))")


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace is left
            break
        kind = m.lastgroup
        value = m.group(kind)
        start = m.start(kind)
        if kind == "bad":
            raise RecipeError(text, start, value, f"unexpected character '{value}'")
        out.append((kind, value, start))
        pos = m.end()
    out.append(("end", "", len(text.rstrip())))
    return out


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokens(text)
        self.i = 0

    def peek(self):
        return self.tokens[self.i]

    def take(self):
        token = self.tokens[self.i]
        self.i += 1
        return token

    def fail(self, token, problem):
        kind, value, pos = token
        raise RecipeError(self.text, pos, value, problem)

    def recipe(self, closing: bool) -> Recipe:
        terms: list[Term] = []
        while True:
            terms.extend(self.term())
            kind, value, _ = self.peek()
            if kind == "op" and value == "+":
                self.take()
                continue
            if kind == "end" and not closing:
                break
            if kind == "op" and value == ")" and closing:
                break
            if kind == "end":
                self.fail(self.peek(), "missing ')'")
            if kind == "op" and value == ")":
                self.fail(self.peek(), "unmatched ')'")
            self.fail(self.peek(), f"expected '+' between terms, got '{value}'")
        return Recipe(tuple(terms))

    def term(self) -> list[Term]:
        count = 1
        kind, value, _ = self.peek()
        if kind == "int":
            token = self.take()
            count = int(value)
            if count < 1:
                self.fail(token, "a repeat count must be at least 1")
            star = self.peek()
            if not (star[0] == "op" and star[1] == "*"):
                self.fail(star, f"expected '*' after the count {value}")
            self.take()
        kind, value, _ = self.peek()
        if kind == "name":
            token = self.take()
            name = value.upper()
            if name not in OPERATIONS:
                self.fail(token, f"unknown operation '{value}'; known operations are {', '.join(OPERATIONS)}")
            return [Term(count, name)]
        if kind == "op" and value == "(":
            self.take()
            inner = self.recipe(closing=True)
            self.take()  # the ')'
            if count == 1:  # redundant parentheses: splice the terms in
                return list(inner.terms)
            if len(inner.terms) == 1:  # n*(m*X) is (n*m)*X
                only = inner.terms[0]
                return [Term(count * only.count, only.body)]
            return [Term(count, inner)]
        if kind == "end":
            self.fail(self.peek(), "recipe ends where an operation was expected")
        self.fail(self.peek(), f"expected an operation name or '(', got '{value}'")


def parse(text: str) -> Recipe:
    """Parse recipe text into a :class:`Recipe`.

    Parameters
    ----------
    text : str
        For example ``"20*ER + 3*(180*HIO + SW) + 200*ER"``.

    Raises
    ------
    RecipeError
        With the column of the bad token and a caret under it; also when the
        recipe has no iteration at all (only ``SW``).
    """
    if not isinstance(text, str):
        raise ConfigError(f"recipe must be text such as '20*ER + 180*HIO', got {text!r}")
    if not text.strip():
        raise RecipeError(text, 0, "", "empty recipe; write e.g. '180*HIO + 20*ER'")
    recipe = _Parser(text).recipe(closing=False)
    if recipe.iterations == 0:
        raise RecipeError(text, len(text) - len(text.lstrip()), text.strip(),
                          f"no iteration in the recipe; add one of {', '.join(sorted(ITERATIONS))}")
    return recipe
