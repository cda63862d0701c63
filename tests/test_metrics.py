"""Metrics: invariance of the symmetry-adjusted error, R-factor, PRTF, PSNR, SSIM."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import ndimage

from doubledip import fft, metrics
from doubledip.physics import FarField, Fresnel
from doubledip.simulate import crystal2d

SHAPES = [(7,), (16,), (6, 6), (7, 9), (8, 5), (5, 6, 4), (5, 5, 5)]


def random_object(shape, seed, *, smooth=0.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    if smooth:
        x = ndimage.gaussian_filter(x.real, smooth, mode="wrap") + 1j * ndimage.gaussian_filter(
            x.imag, smooth, mode="wrap")
    return x


def fourier_shift(x, shift):
    k = fft.frequency_grid(x.shape, centred=False)
    ramp = sum(kk * s / n for kk, s, n in zip(k, shift, x.shape))
    return fft.ifft(fft.fft(x, x.ndim) * np.exp(-2j * np.pi * ramp), x.ndim)


transforms = st.tuples(
    st.sampled_from(SHAPES),
    st.integers(0, 2**16),
    st.lists(st.integers(-10, 10), min_size=3, max_size=3),
    st.floats(-np.pi, np.pi),
    st.booleans(),
)


@given(transforms)
def test_sa_error_invariant_to_phase_translation_and_twin(case):
    shape, seed, shift, phase, twin = case
    x = random_object(shape, seed)
    y = np.exp(1j * phase) * np.roll(x, shift[: len(shape)], axis=tuple(range(len(shape))))
    if twin:
        y = metrics.conjugate_flip(y)
    assert metrics.sa_error(x, y) < 1e-12
    a = metrics.alignment(x, y)
    np.testing.assert_allclose(a.aligned, x, atol=1e-10)
    assert a.conjugate == twin or metrics.sa_error(x, metrics.conjugate_flip(x)) < 1e-12


@given(transforms, st.complex_numbers(min_magnitude=0.1, max_magnitude=10))
def test_scaled_error_invariant_to_complex_scale(case, factor):
    shape, seed, shift, _, twin = case
    x = random_object(shape, seed)
    y = factor * np.roll(x, shift[: len(shape)], axis=tuple(range(len(shape))))
    if twin:
        y = metrics.conjugate_flip(y)
    assert metrics.sa_error(x, y, scale=True) < 1e-12
    # the unit-phase error sees the modulus of the scale
    assert metrics.sa_error(x, y) == pytest.approx(abs(1 - abs(factor)), abs=1e-9)


@given(st.sampled_from([(16,), (12, 13), (6, 7, 6)]), st.integers(0, 2**16),
       st.lists(st.floats(-4, 4), min_size=3, max_size=3), st.booleans())
def test_subpixel_alignment(shape, seed, shift, twin):
    x = random_object(shape, seed, smooth=1.5)
    shift = shift[: len(shape)]
    y = np.exp(0.7j) * fourier_shift(x, shift)
    if twin:
        y = metrics.conjugate_flip(y)
    a = metrics.alignment(x, y, subpixel=True)
    assert a.error < 0.01
    assert a.error <= metrics.sa_error(x, y) + 1e-12
    if not twin:
        n = np.array(shape)
        residual = (np.asarray(a.shift) + shift + n / 2) % n - n / 2  # shifts are circular
        assert np.abs(residual).max() < 0.011


def test_subpixel_beats_integer_alignment():
    x = random_object((24, 24), 3, smooth=1.5)
    y = fourier_shift(x, (0.5, -0.3))
    assert metrics.sa_error(x, y, subpixel=True) < 0.1 * metrics.sa_error(x, y)


@pytest.mark.parametrize("shape", [(16, 16), (15, 13), (6, 7, 5)])
def test_unrelated_object_has_large_error(shape):
    x, y = random_object(shape, 1), random_object(shape, 2)
    assert metrics.sa_error(x, y) > 0.9
    assert metrics.sa_error(x, y, scale=True) > 0.7


def test_crystals_with_different_seeds_differ():
    assert metrics.sa_error(crystal2d(24, seed=0), crystal2d(24, seed=1)) > 0.3


def test_symmetries_follow_the_model():
    assert metrics.symmetries_for("farfield") == ("phase", "translation", "conjugate")
    assert metrics.symmetries_for("fresnel") == ("phase",)
    assert metrics.symmetries_for("gaussian") == ("phase",)
    assert metrics.symmetries_for(FarField((8, 8))) == ("phase", "translation", "conjugate")
    assert metrics.symmetries_for(Fresnel((8, 8))) == ("phase",)
    with pytest.raises(ValueError, match="known models"):
        metrics.symmetries_for("holography")
    x = random_object((8, 8), 0)
    shifted = np.roll(x, 2, axis=0)
    assert metrics.sa_error(x, shifted, symmetries=("phase",)) > 0.5
    assert metrics.sa_error(x, 1j * x, symmetries=("phase",)) < 1e-12
    assert metrics.sa_error(x, 1j * x, symmetries=()) > 1
    with pytest.raises(ValueError):
        metrics.sa_error(x, x, symmetries=("rotation",))
    with pytest.raises(ValueError):
        metrics.sa_error(x, x[:4])


@pytest.mark.parametrize("shape", [(6, 6), (7, 5), (5, 4, 3)])
def test_conjugate_flip_is_an_involution_with_the_same_far_field(shape):
    x = random_object(shape, 4)
    np.testing.assert_allclose(metrics.conjugate_flip(metrics.conjugate_flip(x)), x)
    intensity = np.abs(fft.cfft(x, len(shape)))
    np.testing.assert_allclose(np.abs(fft.cfft(metrics.conjugate_flip(x), len(shape))), intensity, atol=1e-12)
    centre = tuple(s // 2 for s in shape)
    assert metrics.conjugate_flip(x)[centre] == pytest.approx(np.conj(x[centre]))


def test_align_keeps_shape_and_dtype():
    x = random_object((8, 9), 0).astype(np.complex64)
    y = np.roll(x, 3, axis=1) * 1j
    out = metrics.align(x, y)
    assert out.shape == x.shape and out.dtype == np.complex64
    np.testing.assert_allclose(out, x, atol=1e-5)


def test_r_factor_of_the_truth_is_zero_and_scale_is_fitted():
    x = random_object((12, 12), 5)
    amplitude = np.abs(fft.cfft(x, 2))
    intensity = amplitude**2
    mask = np.zeros(x.shape, np.uint8)
    mask[5:7, 5:7] = 1
    garbage = intensity.copy()
    garbage[mask != 0] = 1e6  # masked pixels are free
    assert metrics.r_factor(garbage, amplitude, mask) < 1e-12
    assert metrics.amplitude_error(garbage, amplitude, mask) < 1e-12
    assert metrics.r_factor(intensity, 3 * amplitude) < 1e-12
    assert metrics.r_factor(intensity, 2 * amplitude, fit_scale=False) == pytest.approx(1.0)
    assert metrics.amplitude_error(intensity, 2 * amplitude, fit_scale=False) == pytest.approx(1.0)
    other = np.abs(fft.cfft(random_object((12, 12), 6), 2))
    assert metrics.r_factor(intensity, other) > 0.1


def test_prtf_is_one_for_consistent_reconstructions():
    x = np.pad(crystal2d(12, seed=0), 6).astype(np.complex128)
    copies = [x, 1j * np.roll(x, 2, axis=0), metrics.conjugate_flip(np.roll(x, -1, axis=1))]
    q, values = metrics.prtf(copies, ndim=2)
    assert q[0] == pytest.approx(0) and np.all(np.diff(q) > 0)
    np.testing.assert_allclose(values, 1, atol=1e-9)
    intensity = np.abs(fft.cfft(x, 2)) ** 2 * 7.0  # scale is fitted
    mask = np.zeros(x.shape, np.uint8)
    mask[12, 12] = 1
    q2, values2 = metrics.prtf(copies, intensity, mask, ndim=2)
    np.testing.assert_allclose(values2, 1, atol=1e-6)


def test_prtf_drops_for_random_phases(rng):
    x = np.pad(crystal2d(12, seed=1), 6).astype(np.complex128)
    amplitude = np.abs(fft.cfft(x, 2))
    q = np.sqrt(sum(g.astype(float) ** 2 for g in fft.frequency_grid(x.shape)))
    runs = []
    for _ in range(6):  # phases correct at low q, random beyond q = 5
        phase = np.angle(fft.cfft(x, 2)) + np.where(q > 5, rng.uniform(-np.pi, np.pi, x.shape), 0)
        runs.append(fft.icfft(amplitude * np.exp(1j * phase), 2))
    qs, values = metrics.prtf(runs, amplitude**2, ndim=2)
    assert values[qs < 4].min() > 0.9
    assert values[qs > 7].mean() < 0.6
    q_cut, half_period = metrics.resolution_from_prtf(qs, values, 24)
    assert 4 < q_cut < 9
    assert half_period == pytest.approx(24 / (2 * q_cut))


def test_resolution_from_prtf_interpolates():
    q = np.arange(11.0)
    values = 1 - q / 10
    q_cut, half = metrics.resolution_from_prtf(q, values, 64)
    assert q_cut == pytest.approx(10 * (1 - np.exp(-1)))
    assert half == pytest.approx(64 / (2 * q_cut))
    assert metrics.resolution_from_prtf(q, np.ones(11), 64)[0] == 10


def test_psnr_and_ssim(rng):
    x = rng.uniform(0, 1, (16, 16))
    assert metrics.psnr(x, x) == np.inf
    assert metrics.psnr(x, x + 0.1, data_range=1.0) == pytest.approx(20.0)
    assert metrics.ssim(x, x) == pytest.approx(1.0)
    noisy = x + rng.normal(0, 0.2, x.shape)
    assert metrics.ssim(x, noisy) < 0.9
    assert metrics.ssim(x, noisy) == pytest.approx(metrics.ssim(noisy, x, data_range=np.ptp(x)))
    vol = rng.uniform(0, 1, (6, 6, 6))
    assert metrics.ssim(vol, vol) == pytest.approx(1.0)
    z = random_object((8, 8), 0)
    assert metrics.psnr(z, z * 1.0) == np.inf
