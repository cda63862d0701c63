import numpy as np
import pytest
import torch

from doubledip import fft
from doubledip.physics import DATA_TERMS, FarField, Fresnel, Gaussian, box_slices, dottest

MODELS = [
    lambda: FarField((16, 16)),
    lambda: FarField((15, 17)),
    lambda: FarField((9, 10, 11), (4, 5, 6)),
    lambda: Fresnel((16, 15)),
    lambda: Fresnel((8, 8, 9), chirp=0.01),
    lambda: Gaussian((5, 6), 120, seed=3),
]


@pytest.mark.parametrize("make", MODELS)
def test_adjoint_dot_test(make):
    assert dottest(make()) < 1e-5


@pytest.mark.parametrize("make", MODELS[:5])
def test_parseval_fourier_models_preserve_norm(make, rng):
    model = make()
    x = rng.standard_normal(model.object_shape) + 1j * rng.standard_normal(model.object_shape)
    assert np.isclose(np.linalg.norm(model(x)), np.linalg.norm(x), rtol=1e-5)
    assert np.allclose(model.adjoint(model(x)), x, atol=1e-5)


def test_gaussian_norm_preserved_in_expectation(rng):
    model = Gaussian((8, 8), 4000, seed=0)
    x = rng.standard_normal((8, 8)) + 1j * rng.standard_normal((8, 8))
    assert np.isclose(np.linalg.norm(model(x)), np.linalg.norm(x), rtol=0.05)


def test_gaussian_is_seeded():
    assert torch.equal(Gaussian((4,), 10, seed=5).matrix, Gaussian((4,), 10, seed=5).matrix)
    assert not torch.equal(Gaussian((4,), 10, seed=5).matrix, Gaussian((4,), 10, seed=6).matrix)


@pytest.mark.parametrize("n", [8, 9])
def test_centred_transform_of_symmetric_object_is_real(n):
    x = np.zeros((n, n))
    c = n // 2
    x[c - 2 : c + 3, c - 1 : c + 2] = 1.0
    y = fft.cfft(x, 2)
    assert np.abs(y.imag).max() < 1e-12
    assert np.argmax(np.abs(y)) == np.ravel_multi_index((c, c), y.shape)


@pytest.mark.parametrize("n", [6, 7])
def test_centre_uncentre_inverse(n, rng):
    x = rng.standard_normal((n, n + 1, n + 2))
    assert np.array_equal(fft.centre(fft.uncentre(x, 3), 3), x)
    t = torch.as_tensor(x)
    assert torch.equal(fft.uncentre(fft.centre(t, 3), 3), t)


def test_farfield_intensity_invariant_to_shift_phase_and_twin(rng):
    model = FarField((16, 16), (16, 16))
    x = np.zeros((16, 16), complex)
    x[4:10, 5:9] = rng.standard_normal((6, 4)) + 1j * rng.standard_normal((6, 4))
    i0 = model.intensity(x)
    shifted = np.roll(x, (2, -3), axis=(0, 1)) * np.exp(0.7j)
    twin = np.roll(np.conj(x[::-1, ::-1]), 1, axis=(0, 1))  # point reflection about N//2 on even N
    assert np.allclose(model.intensity(shifted), i0, atol=1e-8)
    assert np.allclose(model.intensity(twin), i0, atol=1e-8)


def test_fresnel_breaks_translation_symmetry(rng):
    model = Fresnel((16, 16), (16, 16), chirp=0.02)
    x = np.zeros((16, 16), complex)
    x[4:10, 5:9] = rng.standard_normal((6, 4))
    assert not np.allclose(model.intensity(np.roll(x, 2, axis=0)), model.intensity(x), atol=1e-3)


def test_box_is_centred():
    assert box_slices((64,), (32,)) == (slice(16, 48),)
    assert box_slices((9,), (5,)) == (slice(2, 7),)
    with pytest.raises(ValueError):
        box_slices((8,), (9,))


def test_batched_forward_matches_loop(rng):
    model = FarField((12, 12))
    x = rng.standard_normal((3, 6, 6)) + 0j
    assert np.allclose(model(x), np.stack([model(xi) for xi in x]))


@pytest.mark.parametrize("name", sorted(DATA_TERMS))
def test_data_terms_zero_at_fit_and_ignore_masked_pixels(name, rng):
    amp = torch.as_tensor(rng.random((2, 8, 8)) + 0.1)
    intensity = amp.square().clone()
    valid = torch.ones(8, 8, dtype=amp.dtype)
    term = DATA_TERMS[name]
    assert torch.allclose(term(amp, intensity, valid, 2), torch.zeros(2, dtype=amp.dtype), atol=1e-6)
    valid[:2] = 0
    corrupted = intensity.clone()
    corrupted[:, :2] = 1e6
    assert torch.allclose(term(amp, corrupted, valid, 2), torch.zeros(2, dtype=amp.dtype), atol=1e-6)
    assert (term(amp * 1.5, intensity, valid, 2) > 0).all()


def test_models_are_differentiable():
    model = FarField((8, 8))
    x = torch.randn(4, 4, dtype=torch.complex64, requires_grad=True)
    model.amplitude(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad.abs()).all()
