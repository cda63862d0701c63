"""Object post-processing: invariance to the trivial ambiguities it removes, and each step's identity."""

import numpy as np
import pytest

from doubledip.physics import FarField
from doubledip.metrics import conjugate_flip
from doubledip.postprocess import (
    apodize,
    average_aligned,
    centre_object,
    postprocess,
    remove_phase_ramp,
    set_global_phase,
    support_from_magnitude,
    unwrap_phase,
)
from doubledip.simulate import crystal2d, crystal3d


def _object(ndim=2, n=12, pattern=None, seed=0):
    box = crystal2d(n, seed=seed) if ndim == 2 else crystal3d(n, seed=seed)
    return FarField(pattern or (2 * n,) * ndim, (n,) * ndim).pad(box)


def _ramp(shape, gradient, constant=0.0):
    grids = np.indices(shape)
    return np.exp(1j * (sum(g * r for g, r in zip(gradient, grids)) + constant))


@pytest.mark.parametrize("ndim, pattern", [(2, None), (2, (25, 22)), (3, None)])
@pytest.mark.parametrize("gradient", [(0.3, -0.2, 0.1), (-1.0, 0.5, 0.7)])
def test_ramp_removal_is_invariant_to_an_added_ramp(ndim, pattern, gradient):
    x = _object(ndim, 12 if ndim == 2 else 6, pattern)
    tilted = x * _ramp(x.shape, gradient[:ndim], constant=0.7)
    a = postprocess(tilted, remove_ramp=True, centre=False)
    b = postprocess(x, remove_ramp=True, centre=False)
    assert np.abs(a.object - b.object).max() < 1e-5 * np.abs(x).max()
    found = np.array(a.ramp) - np.array(b.ramp) - np.array(gradient[:ndim])
    assert np.allclose(np.angle(np.exp(1j * found)), 0, atol=1e-6)  # equal modulo 2 pi


def test_ramp_of_a_constant_object_is_found_exactly():
    obj = np.ones((9, 10)) * _ramp((9, 10), (0.4, -2.5))
    out, gradient = remove_phase_ramp(obj)
    assert gradient == pytest.approx((0.4, -2.5))
    assert np.allclose(out, out[0, 0]) and np.allclose(np.abs(out), 1)


@pytest.mark.parametrize("ndim, pattern", [(2, None), (2, (23, 26)), (3, None)])
@pytest.mark.parametrize("shift", [(3, -5, 1), (-7, 2, -2)])
def test_centring_is_invariant_to_translation(ndim, pattern, shift):
    x = _object(ndim, 10 if ndim == 2 else 6, pattern)
    axes = tuple(range(ndim))
    moved = np.roll(x, shift[:ndim], axis=axes) * np.exp(0.4j)
    a, b = postprocess(moved), postprocess(x)
    assert np.abs(a.object - b.object).max() < 1e-5
    assert np.array_equal(a.support, b.support)


def test_all_symmetries_at_once():
    x = _object(2, 12)
    y = np.roll(x * _ramp(x.shape, (0.25, -0.4), 2.0), (4, -3), axis=(0, 1))
    a = postprocess(y, remove_ramp=True)
    b = postprocess(x, remove_ramp=True)
    assert np.abs(a.object - b.object).max() < 1e-5


def test_centre_object_moves_the_centre_of_mass_to_n_half():
    x = _object(2, 8, (24, 24))
    moved = np.roll(x, (5, -7), axis=(0, 1))
    out, support, shift = centre_object(moved)
    assert shift == (-5.0, 7.0)
    assert np.allclose(out, x, atol=1e-6)
    sub, _, sub_shift = centre_object(np.roll(x, (5, -7), axis=(0, 1)), subpixel=True)
    weights = np.abs(sub) ** 1
    com = [np.sum(weights.sum(axis=1 - a) * np.arange(24)) / weights.sum() for a in (0, 1)]
    assert np.allclose(com, 12, atol=0.05)


def test_global_phase_is_zero_and_removes_a_constant_phase():
    x = _object(2, 12)
    out = postprocess(x * np.exp(2.1j), centre=False)
    support = out.support
    assert abs(np.angle(out.object[support].sum())) < 1e-6
    again, phase = set_global_phase(out.object, support)
    assert abs(phase) < 1e-6 and np.allclose(again, out.object)
    assert np.abs(out.object - postprocess(x, centre=False).object).max() < 1e-5


def test_support_from_magnitude():
    obj = np.zeros((8, 8), complex)
    obj[2:5, 3:6] = 1.0
    obj[0, 0] = 0.05
    assert support_from_magnitude(obj, threshold=0.1).sum() == 9
    assert support_from_magnitude(obj, threshold=0.01).sum() == 10
    assert not support_from_magnitude(np.zeros((4, 4))).any()


@pytest.mark.parametrize("window", ["tukey", "hann", "gaussian"])
def test_apodize_keeps_the_zero_frequency_and_smooths(window):
    x = _object(2, 12, (25, 24))
    out = apodize(x, window=window, alpha=0.5, sigma=1.0)
    assert out.dtype == np.complex64 and out.shape == x.shape
    assert out.sum() == pytest.approx(x.sum(), rel=1e-5)  # W = 1 at the zero frequency
    assert np.linalg.norm(out) < np.linalg.norm(x)
    assert np.allclose(apodize(x, window="tukey", alpha=0.0), x, atol=1e-6)
    with pytest.raises(ValueError, match="known windows"):
        apodize(x, window="kaiser")


def test_unwrap_recovers_a_smooth_phase_beyond_pi():
    y, x = np.indices((20, 22))
    phase = 0.04 * (y - 10) ** 2 + 0.5 * (x - 11)
    support = np.hypot(y - 10, x - 11) < 9
    obj = np.where(support, (1 + 0.2 * np.cos(x)) * np.exp(1j * phase), 0)
    unwrapped = unwrap_phase(obj, support)
    assert np.isnan(unwrapped[~support]).all()
    difference = unwrapped[support] - phase[support]
    assert np.ptp(difference) < 1e-6
    assert abs(difference[0] / (2 * np.pi) - round(difference[0] / (2 * np.pi))) < 1e-6  # same modulo 2 pi


def test_unwrap_3d_with_two_parts():
    z, y, x = np.indices((8, 8, 12))
    phase = 0.9 * x + 0.3 * z
    support = np.zeros((8, 8, 12), bool)
    support[1:4, 1:7, 1:5] = True
    support[4:7, 1:7, 7:11] = True
    obj = np.exp(1j * phase)
    difference = unwrap_phase(obj, support)[support] - phase[support]
    parts = [difference[: 3 * 6 * 4], difference[3 * 6 * 4:]]
    for part in parts:
        assert np.ptp(part) < 1e-6
        assert abs(part[0] / (2 * np.pi) - round(part[0] / (2 * np.pi))) < 1e-6


def test_average_of_shifted_phased_and_twinned_copies_is_the_object():
    x = _object(2, 12)
    copies = [x, np.roll(x, (3, -2), axis=(0, 1)) * np.exp(0.7j), conjugate_flip(x) * np.exp(-2j)]
    mean, used = average_aligned(copies)
    assert used == [0, 1, 2]
    assert np.abs(mean - x).max() < 1e-4 * np.abs(x).max()


def test_average_leaves_out_an_inconsistent_run_and_the_noise_falls():
    rng = np.random.default_rng(0)
    x = _object(2, 12)
    noisy = [x + 0.05 * (rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)) * (np.abs(x) > 0)
             for _ in range(4)]
    other = _object(2, 12, seed=5)
    mean, used = average_aligned(noisy[:2] + [other] + noisy[2:])
    assert used == [0, 1, 3, 4]
    assert np.linalg.norm(mean - x) < 0.7 * np.linalg.norm(noisy[0] - x)
