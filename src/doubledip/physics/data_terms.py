"""Data-fidelity terms on measured pixels.

Every term takes the modelled amplitude ``a = |A x|``, the measured intensity
``I`` and a ``valid`` weight (1 on measured pixels, 0 on masked ones; masked
pixels are free, never treated as measured zeros), and returns the mean over
valid pixels of the trailing ``ndim`` axes, one value per batch element.
"""

from __future__ import annotations

import torch

__all__ = ["amplitude_loss", "poisson_nll", "huber_amplitude_loss", "DATA_TERMS"]


def _masked_mean(values: torch.Tensor, valid: torch.Tensor, ndim: int) -> torch.Tensor:
    dims = tuple(range(-ndim, 0))
    count = valid.sum(dim=dims).clamp_min(1)
    return (values * valid).sum(dim=dims) / count


def amplitude_loss(amplitude, intensity, valid, ndim):
    r"""Amplitude least squares :math:`\frac{1}{|M|}\sum_{k\in M}(a_k - \sqrt{I_k})^2`.

    The variance-stabilised Gaussian approximation of Poisson noise
    (Thibault & Guizar-Sicairos, New J. Phys. 14, 063004 (2012)).
    """
    return _masked_mean((amplitude - intensity.clamp_min(0).sqrt()).square(), valid, ndim)


def poisson_nll(amplitude, intensity, valid, ndim, *, eps=1e-6):
    r"""Poisson deviance :math:`\frac{1}{|M|}\sum_{k\in M} \mu_k - I_k - I_k\log(\mu_k/I_k)`,
    :math:`\mu = a^2`; zero at a perfect fit, the Poisson negative
    log-likelihood up to a constant."""
    mu = amplitude.square() + eps
    i = intensity.clamp_min(0)
    log_term = torch.where(i > 0, i * torch.log(mu / i.clamp_min(eps)), torch.zeros_like(i))
    return _masked_mean(mu - i - log_term, valid, ndim)


def huber_amplitude_loss(amplitude, intensity, valid, ndim, *, delta=1.0):
    r"""Huber loss of the amplitude residual :math:`r = a - \sqrt{I}`:
    :math:`r^2/2` for :math:`|r|\le\delta`, :math:`\delta(|r|-\delta/2)` beyond;
    robust to outlier pixels (hot pixels, unmasked gaps)."""
    r = (amplitude - intensity.clamp_min(0).sqrt()).abs()
    values = torch.where(r <= delta, 0.5 * r.square(), delta * (r - 0.5 * delta))
    return _masked_mean(values, valid, ndim)


DATA_TERMS = {"amplitude": amplitude_loss, "poisson": poisson_nll, "huber": huber_amplitude_loss}
