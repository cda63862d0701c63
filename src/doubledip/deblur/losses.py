r"""Data terms for deblurring, ``loss(prediction, observation) -> scalar`` (torch, mean over pixels).

=========  =====================================================================  ==================
name       term                                                                   noise it suits
=========  =====================================================================  ==================
``l2``     :math:`\langle (p - y)^2\rangle`                                       Gaussian
``huber``  :math:`\langle h_\delta(p - y)\rangle`, quadratic below :math:`\delta`  Gaussian + outliers
``l1``     :math:`\langle |p - y|\rangle`                                          impulse
``ssim``   :math:`1 - \mathrm{SSIM}(p, y)` (Gaussian window, differentiable)      structure (SelfDeblur)
``poisson``:math:`\langle p - y \log p\rangle` (:math:`p` clamped above 0)          Poisson
=========  =====================================================================  ==================

The Poisson negative log-likelihood is written for intensities in arbitrary units:
its minimiser over :math:`p` is :math:`p = y` whatever the photon scale.
The SSIM of Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13, 600 (2004) is taken with
a Gaussian window (``sigma`` 1.5) and the data range 1; Ren et al. (CVPR 2020)
switch to it from least squares after the first iterations.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

__all__ = ["DATA_TERMS", "data_term", "l2", "l1", "huber", "ssim", "ssim_loss", "poisson_nll", "NOISE_DATA_TERM"]

NOISE_DATA_TERM = {"gaussian": "l2", "poisson": "poisson", "impulse": "l1"}


def l2(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (p - y).square().mean()


def l1(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (p - y).abs().mean()


def huber(p: torch.Tensor, y: torch.Tensor, delta: float = 0.02) -> torch.Tensor:
    """Huber loss scaled to match ``l2 / 2`` below ``delta`` and ``delta * |r|`` above it."""
    return F.huber_loss(p, y, delta=delta)


def poisson_nll(p: torch.Tensor, y: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    p = p.clamp_min(eps)
    return (p - y.clamp_min(0) * torch.log(p)).mean()


def _gaussian_window(sigma: float, device, dtype) -> torch.Tensor:
    radius = int(3.5 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    g = torch.exp(-t**2 / (2 * sigma**2))
    return g / g.sum()


def ssim(p: torch.Tensor, y: torch.Tensor, *, sigma: float = 1.5, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of two ``(..., H, W)`` images (valid Gaussian filtering, sample covariances)."""
    g = _gaussian_window(sigma, p.device, p.dtype)
    n = g.numel()

    def filt(a):
        a = a.reshape((-1, 1) + a.shape[-2:])
        a = F.conv2d(a, g.view(1, 1, n, 1))
        return F.conv2d(a, g.view(1, 1, 1, n))

    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    correction = n * n / (n * n - 1)
    mx, my = filt(p), filt(y)
    vx = (filt(p * p) - mx * mx) * correction
    vy = (filt(y * y) - my * my) * correction
    vxy = (filt(p * y) - mx * my) * correction
    index = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return index.mean()


def ssim_loss(p: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1.0 - ssim(p, y)


DATA_TERMS = {"l2": l2, "l1": l1, "huber": huber, "ssim": ssim_loss, "poisson": poisson_nll}


def data_term(name: str, **kwargs):
    """The data term called ``name`` (see the module table); keyword options are bound (e.g. ``delta``)."""
    try:
        fn = DATA_TERMS[name]
    except KeyError:
        raise ValueError(f"unknown data term '{name}'; use {', '.join(DATA_TERMS)}") from None
    if kwargs:
        return lambda p, y: fn(p, y, **kwargs)
    return fn


def noise_floor(name: str, sigma: float) -> float:
    """Expected value of the data term at the truth for Gaussian noise of std ``sigma`` (``l2``, ``l1``)."""
    if name == "l2":
        return sigma**2
    if name == "l1":
        return sigma * math.sqrt(2 / math.pi)
    return math.nan
