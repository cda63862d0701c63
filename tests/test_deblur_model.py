"""Blur forward model, kernels, kernel generator and data terms of doubledip.deblur."""

import numpy as np
import pytest
import torch
from scipy import ndimage, signal

from doubledip.deblur import losses
from doubledip.deblur.evaluation import kernel_error
from doubledip.deblur.kernel_estimate import estimate_kernel, periodic_extension
from doubledip.deblur.kernel_generator import KernelGenerator
from doubledip.deblur.kernels import centre_kernel, embed_kernel, gaussian_kernel, make_kernel, motion_kernel, odd_size
from doubledip.deblur.model import BlurOperator, blur, crop_centre, degrade, gcv_weight


@pytest.mark.parametrize("shape, ksize", [((9, 11), (5, 5)), ((2, 8, 7), (3, 5)), ((6, 6), (1, 1))])
def test_blur_and_adjoint_pass_the_dot_test(rng, shape, ksize):
    op = BlurOperator(rng.random(ksize), shape)
    x = rng.standard_normal(op.object_shape)
    y = rng.standard_normal(op.data_shape)
    lhs, rhs = np.vdot(op(x), y), np.vdot(x, op.adjoint(y))
    assert op(x).shape == tuple(shape) and op.adjoint(y).shape == op.object_shape
    assert abs(lhs - rhs) <= 1e-10 * max(abs(lhs), 1.0)


def test_blur_is_the_valid_linear_convolution_without_wrap_around(rng):
    x, k = rng.random((13, 17)), rng.random((5, 7))
    expected = signal.convolve2d(x, k, mode="valid")
    got = blur(torch.from_numpy(x), torch.from_numpy(k)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-12)
    # a spike in the far corner reaches only the outputs within one kernel of it, never the opposite side
    spike = np.zeros((13, 17))
    spike[-1, -1] = 1
    out = blur(torch.from_numpy(spike), torch.from_numpy(k)).numpy()
    assert np.all(out[: out.shape[0] - 5, :] == 0) or np.allclose(out[: out.shape[0] - 5, :], 0, atol=1e-14)
    assert np.allclose(out[:, : out.shape[1] - 7], 0, atol=1e-14)


def test_normalised_kernel_keeps_a_flat_image_flat_and_centre_lines_up(rng):
    k = motion_kernel(7, seed=3)
    flat = blur(torch.ones(1, 20, 20, dtype=torch.float64), torch.from_numpy(k.astype(np.float64)))
    np.testing.assert_allclose(flat.numpy(), 1.0, atol=1e-6)
    delta = np.zeros((7, 7))
    delta[3, 3] = 1
    x = rng.random((16, 18))
    out = blur(torch.from_numpy(x), torch.from_numpy(delta)).numpy()
    np.testing.assert_allclose(out, crop_centre(x, out.shape), atol=1e-12)


@pytest.mark.parametrize("kind", ["motion", "gaussian"])
@pytest.mark.parametrize("size", [4, 9, 13])
def test_kernels_are_nonnegative_normalised_odd_and_seeded(kind, size):
    k = make_kernel(kind, size, seed=5)
    assert k.shape == (odd_size(size),) * 2 and k.dtype == np.float32
    assert k.min() >= 0 and abs(float(k.sum(dtype=np.float64)) - 1) < 1e-5
    np.testing.assert_array_equal(k, make_kernel(kind, size, seed=5))
    assert not np.array_equal(k, make_kernel(kind, size, seed=6))


def test_kernel_embedding_and_centring_keep_the_centre_pixel():
    k = gaussian_kernel(5, sigma=1.0)
    big = embed_kernel(k, 11)
    assert np.unravel_index(big.argmax(), big.shape) == (5, 5) and np.isclose(big.sum(), 1)
    np.testing.assert_array_equal(embed_kernel(big, 5), k)
    off = np.roll(big, (2, -1), axis=(0, 1))
    assert np.unravel_index(centre_kernel(off).argmax(), big.shape) == (5, 5)


@pytest.mark.parametrize("kind", ["fcn", "free"])
def test_kernel_generator_is_a_broad_normalised_kernel(kind):
    gen = KernelGenerator(9, kind=kind, hidden=32, seed=0)
    with torch.no_grad():
        k = gen()
    assert k.shape == (9, 9) and float(k.min()) >= 0 and abs(float(k.sum()) - 1) < 1e-5
    assert float(k.max()) < 0.2  # starts broad, not a delta
    assert np.unravel_index(int(k.argmax()), (9, 9)) == (4, 4)
    scaled = KernelGenerator(9, kind=kind, hidden=32, seed=0, lr_scale=0.01)
    with torch.no_grad():
        torch.testing.assert_close(scaled(), k)


def test_degrade_is_seeded_and_keeps_the_shape(rng):
    image = rng.random((20, 22, 3)).astype(np.float32)
    k = gaussian_kernel(5, sigma=1.0)
    for noise_type in ("gaussian", "poisson", "impulse"):
        a = degrade(image, k, noise=0.05, noise_type=noise_type, seed=1)
        assert a.shape == image.shape and a.dtype == np.float32
        np.testing.assert_array_equal(a, degrade(image, k, noise=0.05, noise_type=noise_type, seed=1))
    clean = degrade(image[..., 0], k, noise=0.0)
    assert clean.shape == (20, 22) and 0 <= clean.min() and clean.max() <= 1


@pytest.mark.parametrize("name", ["l2", "l1", "huber", "ssim", "poisson"])
def test_data_terms_are_stationary_at_the_observation(rng, name):
    y = torch.as_tensor(rng.random((2, 16, 16)) * 0.8 + 0.1)
    p = y.clone().requires_grad_(True)
    loss = losses.data_term(name)(p, y)
    loss.backward()
    assert float(p.grad.abs().max()) < 1e-6
    worse = losses.data_term(name)(y + 0.05 * torch.as_tensor(rng.standard_normal(y.shape)), y)
    assert float(worse) > float(loss.detach())


def test_ssim_matches_scikit_image(rng):
    from skimage.metrics import structural_similarity

    a = rng.random((24, 24))
    b = np.clip(a + 0.1 * rng.standard_normal(a.shape), 0, 1)
    ref = structural_similarity(a, b, data_range=1.0, gaussian_weights=True, sigma=1.5, use_sample_covariance=True)
    ours = float(losses.ssim(torch.from_numpy(a), torch.from_numpy(b)))
    assert abs(ours - ref) < 1e-6


def _blocks(rng, shape=(32, 32)):
    """A piecewise-constant scene with strong edges (what the l0 kernel estimate looks for)."""
    coarse = rng.random((shape[0] // 8, shape[1] // 8))
    return ndimage.zoom(coarse, 8, order=0)[:shape[0], :shape[1]]


def test_periodic_extension_has_no_wrap_around_jump(rng):
    image = rng.random((9, 12))
    ext = periodic_extension(image, 4)
    assert ext.shape == (13, 16)
    np.testing.assert_array_equal(ext[:9, :12], image)
    inside = max(np.abs(np.diff(image, axis=a)).max() for a in (0, 1))
    wrap = max(np.abs(ext[0] - ext[-1]).max(), np.abs(ext[:, 0] - ext[:, -1]).max())
    assert wrap <= inside


def test_l0_kernel_estimate_is_a_centred_kernel_near_the_truth(rng):
    truth = np.zeros((5, 5))
    truth[2, 1:4] = 1 / 3  # horizontal motion
    y = degrade(_blocks(rng), truth, noise=0.0, seed=0)
    k = estimate_kernel(y, 7, iterations=3)
    assert k.shape == (7, 7) and k.min() >= 0 and np.isclose(k.sum(), 1)
    com = [float((np.arange(7)[:, None] * k).sum()), float((np.arange(7)[None, :] * k).sum())]
    assert max(abs(c - 3) for c in com) <= 0.5
    assert kernel_error(truth, k) < kernel_error(truth, embed_kernel(np.ones((1, 1)), 7))


def test_l0_kernel_estimate_is_solved_under_positivity_only_at_low_noise(rng):
    truth = np.zeros((5, 5))
    truth[1:4, 1:4] = np.eye(3) / 3  # diagonal motion
    clean = degrade(_blocks(rng, (48, 48)), truth, noise=0.0, seed=0)
    noisy = clean + 0.2 * rng.standard_normal(clean.shape)
    ridge = {"iterations": 2, "nonneg_below": 0}
    always = {"iterations": 2, "nonneg_below": np.inf}
    np.testing.assert_array_equal(estimate_kernel(noisy, 7, iterations=2), estimate_kernel(noisy, 7, **ridge))
    np.testing.assert_array_equal(estimate_kernel(clean, 7, iterations=2), estimate_kernel(clean, 7, **always))
    assert not np.allclose(estimate_kernel(clean, 7, **always), estimate_kernel(clean, 7, **ridge))


def test_nonneg_kernel_step_meets_the_kkt_conditions(rng):
    from scipy import fft as sfft

    from doubledip.deblur.kernel_estimate import _nonneg_kernel, _otf, _window

    shape, size = (32, 32), 5
    x, signed = rng.standard_normal(shape), rng.standard_normal((size, size))  # negative entries: active bounds
    fx = sfft.rfft2(x)
    y = sfft.irfft2(fx * _otf(signed, shape), s=shape)
    num, den, ridge = np.conj(fx) * sfft.rfft2(y), np.abs(fx) ** 2, 1.0
    k = _nonneg_kernel(num, den, ridge, shape, size, np.zeros((size, size)), 500)
    gradient = _window(sfft.irfft2(den * _otf(k, shape) - num, s=shape), size) + ridge * k
    scale = np.abs(_window(sfft.irfft2(num, s=shape), size)).max()
    assert k.min() >= 0 and (k == 0).any() and (k > 0).any()
    assert np.abs(gradient[k > 0]).max() < 1e-6 * scale and gradient[k == 0].min() > -1e-6 * scale


def test_gcv_weight_grows_with_the_noise(rng):
    k = gaussian_kernel(5, sigma=1.0)
    clean = degrade(_blocks(rng), k, noise=0.0, seed=0)
    grid = np.logspace(-6, 0, 13)
    weights = [gcv_weight(clean + s * rng.standard_normal(clean.shape), k, grid=grid) for s in (1e-3, 1e-1)]
    assert weights[0] in grid and weights[0] < weights[1]


@pytest.mark.parametrize("kind", ["fcn", "free"])
def test_kernel_generator_starts_from_a_given_kernel(kind):
    k0 = motion_kernel(7, seed=1)
    gen = KernelGenerator(7, kind=kind, hidden=16, seed=0, init=k0)
    with torch.no_grad():
        k = gen().numpy()
    np.testing.assert_allclose(k, k0, rtol=0.05, atol=2e-3 * k0.max())
    with pytest.raises(ValueError):
        KernelGenerator(7, kind=kind, init=np.zeros((7, 7)))
