"""The classical engine: ER monotone, recovery, batching, seeds, algorithm identities, guard, presets."""

import dataclasses

import numpy as np
import pytest
import torch
from scipy import ndimage

from doubledip import fft, io
from doubledip.classical import PRESETS, ClassicalOptions, Engine, centre_object, parse, solve
from doubledip.config import make_options
from doubledip.errors import ConfigError, DataError
from doubledip.methods import get_method, method_names
from doubledip.metrics import sa_error


def tiny_object(N=32, seed=0):
    """An asymmetric 142-pixel object with a smooth phase, centred in an N x N grid."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:N, :N] - N // 2
    shape = ((np.abs(x + 1) <= 6) & (np.abs(y) <= 4)) | ((x >= -2) & (x <= 4) & (y >= -8) & (y <= 0) & (x - y <= 10))
    phase = 0.8 * np.sin(x / 4.0 + rng.uniform(0, 6)) + 0.5 * np.cos(y / 3.0)
    return (shape * np.exp(1j * phase)).astype(np.complex64), shape


def pattern(obj):
    return (np.abs(fft.cfft(obj, obj.ndim)) ** 2).astype(np.float32)


@pytest.fixture(scope="module")
def sample():
    obj, shape = tiny_object()
    return obj, shape, pattern(obj)


def options(**kw):
    kw.setdefault("starts", 2)
    return ClassicalOptions(**kw)


def test_er_never_increases_the_fourier_error(sample):
    obj, shape, intensity = sample
    mask = np.zeros(intensity.shape, np.uint8)
    mask[14:18, 14:18] = 1  # a beamstop: free pixels
    support = ndimage.binary_dilation(shape, iterations=2)
    for constraint in ({}, {"positivity": True}, {"real": True}):
        e = Engine(intensity, mask, options=options(starts=3, **constraint), seed=1, support=support)
        e.run("60*ER")
        loss = e.history()["loss_starts"]
        # from the 2nd iterate on, every iterate lies in the object set
        steps = np.diff(loss[:, 1:], axis=1)
        assert np.all(steps <= 1e-6 * loss[:, 1:-1] + 1e-9), constraint


def test_hio_er_recovers_a_noiseless_object_with_a_loose_support(sample):
    obj, shape, intensity = sample
    support = ndimage.binary_dilation(shape, iterations=1)  # a third larger than the object
    assert support.sum() > 1.3 * shape.sum()
    o = options(starts=4, free_fraction=0.0, recipe="300*HIO + 100*ER")
    result = Engine(intensity, options=o, seed=0, support=support).run(o.recipe).result()
    assert sa_error(obj, result.object) < 0.01
    assert result.history["final_loss_starts"].min() < 1e-6


def test_hio_er_sw_from_the_autocorrelation_recovers_the_object(sample):
    obj, shape, intensity = sample
    measurement = io.Measurement(intensity, np.zeros(intensity.shape, np.uint8), obj, "tiny")
    result = solve(measurement, options(starts=4, recipe="100*HIO + 20*(20*HIO + SW) + 100*ER"), seed=0)
    assert sa_error(obj, result.object) < 0.05


def test_batched_starts_equal_single_starts_with_the_same_seeds(sample):
    _, _, intensity = sample
    recipe = "20*HIO + SW + 10*RAAR + SW + 5*DM + 5*OSS + 10*ER"
    o = options(starts=3)
    batch = Engine(intensity, options=o, seed=7).run(recipe)
    for k in range(3):
        single = Engine(intensity, options=o, seed=7, start_indices=[k]).run(recipe)
        assert torch.allclose(single.x[0], batch.x[k], rtol=1e-4, atol=1e-5)
        assert torch.equal(single.support[0], batch.support[k])
        np.testing.assert_allclose(single.history()["loss_starts"][0], batch.history()["loss_starts"][k], rtol=1e-4)


def test_same_seed_same_result_and_other_seed_differs(sample):
    _, _, intensity = sample
    m = io.Measurement(intensity, np.zeros(intensity.shape, np.uint8))
    o = options(recipe="30*HIO + SW + 10*ER")
    a, b, c = solve(m, o, seed=3), solve(m, o, seed=3), solve(m, o, seed=4)
    assert np.array_equal(a.object, b.object) and np.array_equal(a.support, b.support)
    for key in a.history:
        np.testing.assert_array_equal(a.history[key], b.history[key])
    assert not np.array_equal(a.object, c.object)
    assert a.seed == 3 and a.config["seed"] == 3


@pytest.mark.parametrize("name", ["RAAR", "DM"])
def test_raar_and_difference_map_with_beta_one_are_hio_with_beta_one(sample, name):
    _, shape, intensity = sample
    support = ndimage.binary_dilation(shape, iterations=2)
    o = options(beta=1.0)
    hio = Engine(intensity, options=o, seed=2, support=support).run("6*HIO")
    other = Engine(intensity, options=o, seed=2, support=support).run(f"6*{name}")
    # equal in exact arithmetic; rounding differs (x + (y - x) is not y) and HIO amplifies it
    assert torch.allclose(hio.x, other.x, rtol=1e-4, atol=1e-4)


def test_every_algorithm_lowers_the_error_and_keeps_constraints(sample):
    _, shape, intensity = sample
    support = ndimage.binary_dilation(shape, iterations=1)
    for name in ("ER", "HIO", "RAAR", "DM", "OSS"):
        for constraint in ({}, {"positivity": True, "real": True}):
            e = Engine(intensity, options=options(**constraint), seed=0, support=support)
            before = e.final_errors()["loss"]
            e.run(f"40*{name} + 10*ER")
            after = e.final_errors()["loss"]
            assert torch.all(torch.isfinite(e.x))
            assert torch.all(after < before), (name, constraint)
            est = e.estimates()
            assert torch.all(est[~e.support] == 0)
            if constraint:
                assert torch.all(est.imag == 0) and torch.all(est.real >= 0)


def test_result_follows_the_file_conventions(sample):
    obj, shape, intensity = sample
    rolled = np.roll(obj, (5, -7), axis=(0, 1))  # the object need not be centred in real space
    m = io.Measurement(pattern(rolled), np.zeros(intensity.shape, np.uint8))
    result = solve(m, options(recipe="100*HIO + 10*(10*HIO + SW) + 50*ER"), seed=1, method="hio-er-sw")
    assert result.object.dtype == np.complex64 and result.support.dtype == bool
    assert result.object.shape == result.support.shape == intensity.shape
    weight = np.abs(result.object) * result.support
    centre = [np.sum(weight * g) / weight.sum() for g in np.indices(weight.shape)]
    assert np.allclose(centre, [16, 16], atol=1.0)
    assert abs(np.angle(np.sum(result.object[result.support]))) < 1e-4
    K = result.config["starts"]
    assert result.history["loss_starts"].shape == (K, 250)
    assert result.history["loss"].shape == (250,)
    assert result.history["final_free_loss_starts"].shape == (K,)
    assert sorted(result.history["rank_starts"]) == list(range(K))
    assert result.config["method"] == "hio-er-sw" and result.config["recipe"] == "100*HIO + 10*(10*HIO + SW) + 50*ER"
    assert result.timings["total"] > 0


def test_centre_object_moves_the_centre_of_mass_and_fixes_the_phase():
    obj = np.zeros((16, 12), np.complex64)
    obj[0:3, 10:12] = 2j  # wrapped around the corner in origin-first order
    obj[15, 11] = 2j
    centred, support = centre_object(obj, np.abs(obj) > 0)
    rows, cols = np.nonzero(support)
    assert abs(rows.mean() - 8) <= 1 and abs(cols.mean() - 6) <= 1
    assert np.allclose(centred[support], 2.0)


def test_the_guard_backs_off_a_collapsing_support_and_refuses_an_exploding_one(sample):
    _, _, intensity = sample
    # a threshold of 0.95 shrinks the support to a few pixels: the data stop fitting
    e = Engine(intensity, options=options(sw_threshold=0.95, sw_backoff=0.5), seed=0)
    e.run("30*HIO + 10*(10*HIO + SW)")
    assert torch.all(e.guard.collapsed > 0)
    assert torch.all(e.guard.threshold < 0.95)
    assert torch.all(e.support.sum(dim=(-2, -1)) >= 4)
    # a 1% limit refuses every update
    e = Engine(intensity, options=options(guard_max_fraction=0.01, sw_threshold=0.01), seed=0)
    before = e.support.clone()
    e.run("10*HIO + SW + SW")
    assert torch.all(e.guard.exploded == 2) and torch.equal(e.support, before)
    result = e.result()
    assert result.config["support_guard"]["exploding_starts"] == 2


def test_3d_runs_on_the_same_code_path():
    rng = np.random.default_rng(0)
    obj = np.zeros((12, 12, 12), np.complex64)
    obj[4:8, 3:8, 5:9] = np.exp(1j * rng.uniform(0, 1, (4, 5, 4)))
    m = io.Measurement(pattern(obj), np.zeros((12, 12, 12), np.uint8))
    result = solve(m, options(recipe="20*HIO + SW + 10*ER"), seed=0)
    assert result.object.shape == (12, 12, 12)
    assert result.history["loss_starts"].shape == (2, 30)


def test_box_support_and_odd_sizes():
    obj = np.zeros((15, 17), np.complex64)
    obj[5:9, 6:12] = 1
    e = Engine(pattern(obj), options=options(support="box", box_fraction=0.5), seed=0)
    assert e.support[0].sum() == 8 * 9
    e.run("10*HIO + SW + 5*ER")
    assert e.result().object.shape == (15, 17)


def test_options_are_checked():
    with pytest.raises(ConfigError, match="known options"):
        make_options(ClassicalOptions, {"betta": 0.5})
    with pytest.raises(ConfigError, match="beta"):
        make_options(ClassicalOptions, {"beta": 1.5})
    with pytest.raises(ConfigError, match="column"):
        make_options(ClassicalOptions, {"recipe": "20*ER + HOI"})
    assert make_options(ClassicalOptions, {"recipe": "20 * er"}).recipe == "20*ER"
    with pytest.raises(ConfigError, match="average"):
        make_options(ClassicalOptions, {"average": 0})


def test_presets_are_registered_with_their_recipes():
    names = set(method_names())
    for name, preset in PRESETS.items():
        assert name in names and preset["description"]
        method = get_method(name)
        opts = method.options_cls()
        assert opts.recipe == str(parse(preset["recipe"]))
        assert dataclasses.is_dataclass(opts) and isinstance(opts, ClassicalOptions)
        assert method.description == preset["description"]
    assert make_options(get_method("raar-er-sw").options_cls, {}, starts=3).starts == 3


def test_solve_rejects_unusable_measurements():
    with pytest.raises(DataError):
        solve(io.Measurement(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.uint8), source="x.npz"),
              options())
    with pytest.raises(ConfigError):
        solve(io.Measurement(np.ones((8, 8), np.float32), np.zeros((8, 8), np.uint8)), options(), device="tpu")


def test_callback_reports_progress(sample):
    _, _, intensity = sample
    seen = []
    Engine(intensity, options=options(), seed=0).run("25*HIO + SW + 25*ER", callback=seen.append, callback_every=10)
    assert [s["iteration"] for s in seen] == [10, 20, 30, 40, 50]
    assert all(s["total"] == 50 and np.isfinite(s["loss"]) for s in seen)


def test_averaging_the_best_starts(sample):
    obj, _, intensity = sample
    m = io.Measurement(intensity, np.zeros(intensity.shape, np.uint8))
    recipe = "60*HIO + 3*(10*HIO + SW) + 30*ER"
    single = solve(m, options(starts=4, recipe=recipe, average=1), seed=2)
    averaged = solve(m, options(starts=4, recipe=recipe, average=4, average_error_ratio=1e9), seed=2)
    assert single.config["averaged_starts"] == [single.config["best_start"]]
    used = averaged.config["averaged_starts"]
    assert used[0] == averaged.config["best_start"] and len(set(used)) == len(used) <= 4
    assert np.array_equal(averaged.support, single.support)  # the best start's
    if len(used) == 1:
        assert np.allclose(averaged.object, single.object, atol=1e-5)
    # averaging only agreeing runs: no worse than the spread of what it averages
    assert sa_error(obj, averaged.object) <= sa_error(obj, single.object) + 0.05


def test_curves_keep_every_appended_row_across_growth():
    from doubledip.classical.engine import Curves

    curves = Curves(3, "cpu")
    rows = [torch.tensor([i, 2.0 * i, -i]) for i in range(150)]  # grows twice from 64 rows
    for r in rows:
        curves.append(r)
    assert len(curves) == 150 and torch.equal(curves.last(), rows[-1])
    np.testing.assert_array_equal(curves.numpy(), torch.stack(rows, dim=1).double().numpy())
