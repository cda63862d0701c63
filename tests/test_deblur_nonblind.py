"""tv_deconvolve: fixed points, optimality, channels, and the weight rule."""

import numpy as np
import pytest
import torch

from doubledip.deblur import degrade, gaussian_kernel, motion_kernel
from doubledip.deblur.model import blur, crop_centre
from doubledip.deblur.nonblind import tv_deconvolve, tv_weight


def _objective(x, y, k, lam):
    gy = x[..., 1:, :-1] - x[..., :-1, :-1]
    gx = x[..., :-1, 1:] - x[..., :-1, :-1]
    return float(0.5 * (blur(x, k) - y).square().sum() + lam * torch.sqrt(gy * gy + gx * gx).sum())


@pytest.fixture
def case(rng):
    image = np.zeros((24, 26))
    image[6:17, 5:14] = 0.8
    image[12:20, 15:23] = 0.4
    k = motion_kernel(7, seed=1)
    y = degrade(image, k, noise=0.01, seed=2)
    return image, torch.as_tensor(y, dtype=torch.float64), torch.as_tensor(k, dtype=torch.float64)


def test_a_constant_observation_is_a_fixed_point():
    y = torch.full((10, 12), 0.3, dtype=torch.float64)
    k = torch.as_tensor(gaussian_kernel(5, sigma=1.0), dtype=torch.float64)
    x = tv_deconvolve(y, k, 1e-3, iterations=30)
    assert x.shape == (14, 16)
    np.testing.assert_allclose(x.numpy(), 0.3, atol=1e-9)


def test_it_minimises_the_objective(case):
    _, y, k = case
    lam = 2e-3
    x = tv_deconvolve(y, k, lam, iterations=300)
    best = _objective(x, y, k, lam)
    start = torch.nn.functional.pad(y[None], (3, 3, 3, 3), mode="replicate")[0]
    assert best < _objective(start, y, k, lam)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        assert best <= _objective(x + 1e-3 * torch.randn(x.shape, generator=g, dtype=x.dtype), y, k, lam)
    assert best == pytest.approx(_objective(tv_deconvolve(y, k, lam, iterations=2000), y, k, lam), rel=1e-3)


def test_it_sharpens_and_treats_channels_independently(case):
    image, y, k = case
    x = tv_deconvolve(y, k, tv_weight(0.01), iterations=200)
    err_x = np.abs(crop_centre(x.numpy(), image.shape) - image)[3:-3, 3:-3].mean()
    err_y = np.abs(y.numpy() - image)[3:-3, 3:-3].mean()
    assert err_x < 0.6 * err_y
    both = tv_deconvolve(torch.stack([y, 0.5 * y]), k, tv_weight(0.01), iterations=50)
    np.testing.assert_allclose(both[0].numpy(), tv_deconvolve(y, k, tv_weight(0.01), iterations=50).numpy(), atol=1e-9)


def test_the_weight_grows_with_the_noise_and_must_be_positive():
    assert tv_weight(0.05) > tv_weight(0.01) > 0
    assert tv_weight(0.04) == pytest.approx(8 * tv_weight(0.01))
    with pytest.raises(ValueError, match="weight"):
        tv_deconvolve(torch.zeros(8, 8), torch.ones(3, 3) / 9, 0.0)


def test_masked_pixels_do_not_enter_the_data_term(case):
    _, y, k = case
    mask = torch.zeros(y.shape, dtype=torch.bool)
    mask[5:9, 4:20] = True
    changed = y.clone()
    changed[mask] = torch.rand(int(mask.sum()), dtype=y.dtype, generator=torch.Generator().manual_seed(3))
    a = tv_deconvolve(y, k, 2e-3, iterations=60, mask=mask)
    b = tv_deconvolve(changed, k, 2e-3, iterations=60, mask=mask, x0=tv_deconvolve(y, k, 2e-3, iterations=0))
    np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-9)
    assert not torch.allclose(a, tv_deconvolve(changed, k, 2e-3, iterations=60))
