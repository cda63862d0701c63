r"""Support estimates: the thresholded autocorrelation, a centred box, shrink-wrap and its guard.

All tensors are in origin-first order (:mod:`doubledip.fft`) on the pattern grid.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from doubledip import fft
from doubledip.classical.projections import gaussian_transfer
from doubledip.physics.farfield import box_slices

__all__ = ["autocorrelation_support", "box_support", "shrink_wrap", "SupportGuard", "sigma_schedule"]

log = logging.getLogger(__name__)


def _blur(values: torch.Tensor, sigma: float, ndim: int) -> torch.Tensor:
    """Periodic Gaussian blur of a real array over its trailing ``ndim`` axes."""
    if sigma <= 0:
        return values
    dims = tuple(range(-ndim, 0))
    shape = tuple(values.shape[-ndim:])
    transfer = gaussian_transfer(shape, sigma, device=values.device, rfft=True)
    return torch.fft.irfftn(torch.fft.rfftn(values, dim=dims) * transfer, s=shape, dim=dims)


def autocorrelation_support(intensity: torch.Tensor, valid: torch.Tensor, *, threshold: float = 0.1,
                            sigma: float = 1.0) -> torch.Tensor:
    r"""Initial support from the autocorrelation of the object.

    The inverse transform of the measured intensity is the autocorrelation
    :math:`x \star x`, whose support :math:`S - S` contains a translate of the
    object's support (J. R. Fienup, T. R. Crimmins & W. Holsztynski, JOSA 72, 610
    (1982)).  We take

    .. math:: S_0 = \{ r : (g_\sigma * |F^{-1}(v \odot I)|)(r) > t \max \}

    with ``v`` the measured pixels (unmeasured ones count as 0), a Gaussian
    ``g`` of width ``sigma`` pixels and the threshold ``t`` relative to the
    maximum.  Origin-first in, origin-first out (the support is centred on the
    origin, like the object the solver builds).

    Parameters
    ----------
    intensity, valid : Tensor
        Origin-first pattern and its measured-pixel weight (1/0), same shape.
    threshold : float
        Fraction of the maximum, in (0, 1).
    sigma : float
        Smoothing width in pixels (0 for none).
    """
    ndim = intensity.ndim
    auto = fft.ifft((intensity.clamp_min(0) * valid).to(torch.complex64), ndim).abs()
    auto = _blur(auto, sigma, ndim)
    support = auto > threshold * auto.max()
    if not bool(support.any()):  # pragma: no cover - only for an all-zero pattern
        support.view(-1)[0] = True
    return support


def box_support(shape: tuple[int, ...], fraction: float, *, device="cpu") -> torch.Tensor:
    """A centred box of ``ceil(fraction * N)`` pixels per axis, origin-first."""
    box = tuple(max(1, min(n, math.ceil(fraction * n))) for n in shape)
    centred = np.zeros(shape, dtype=bool)
    centred[box_slices(shape, box)] = True
    return torch.as_tensor(fft.uncentre(centred, len(shape)).copy(), device=device)


def sigma_schedule(index: int, total: int, start: float, end: float) -> float:
    r"""Width of shrink-wrap update ``index`` (0-based) of ``total``: geometric from ``start`` to ``end``.

    .. math:: \sigma_i = \sigma_{start} (\sigma_{end} / \sigma_{start})^{i / (n - 1)}

    Marchesini et al. shrink the width by 1% per update down to a floor; a
    geometric schedule over the planned updates reaches the floor exactly at the
    last one, whatever their number.
    """
    if total <= 1:
        return float(start)
    frac = min(index, total - 1) / (total - 1)
    return float(start * (end / start) ** frac)


def shrink_wrap(x: torch.Tensor, support: torch.Tensor, *, sigma: float, threshold, ndim: int) -> torch.Tensor:
    r"""Shrink-wrap support update (S. Marchesini et al., Phys. Rev. B 68, 140101 (2003)).

    .. math:: S' = \{ r : (g_\sigma * |P_S x|)(r) > t \max_r (g_\sigma * |P_S x|) \}

    per batch entry (each start has its own support and maximum).

    Parameters
    ----------
    x : Tensor, complex, shape ``(K, *grid)``
        Current iterates (origin first).
    support : Tensor of bool, same shape
        Current supports; the blur sees only the object inside them (outside,
        HIO-type iterates hold feedback, not object).
    sigma : float
        Gaussian width in pixels.
    threshold : float or Tensor of shape ``(K,)``
        Fraction of each start's maximum (one value, or one per start).
    """
    dims = tuple(range(-ndim, 0))
    blurred = _blur((x.abs() * support), sigma, ndim)
    peak = blurred.amax(dim=dims, keepdim=True)
    if isinstance(threshold, torch.Tensor):
        threshold = threshold.view(threshold.shape + (1,) * ndim)
    return blurred > threshold * peak


@dataclass
class SupportGuard:
    r"""Watches shrink-wrap: refuses exploding supports and backs off from collapsing ones.

    Two checks run at every shrink-wrap update, per start:

    * **collapse** (data consistency): the Fourier error ``loss`` of the current
      estimate :math:`P_S x` on the measured pixels is compared with the lowest
      one seen at an earlier update, ``best``.  When
      ``loss > loss_ratio * best + loss_tol`` the support has become too tight
      to hold the object (the usual failure on noisy data with a missing centre):
      the start goes back to the support that gave ``best``, its shrink-wrap
      threshold is multiplied by ``backoff``, and this update is skipped;
    * **explosion**: a new support covering more than ``max_fraction`` of the
      grid (oversampling ratio below ``1 / max_fraction``; at 0.5 the object is
      no longer determined, Miao, Sayre & Chapman, JOSA A 15, 1662 (1998)), or
      one with fewer than ``min_pixels`` pixels, is refused and the previous
      support kept.

    ``collapsed`` and ``exploded`` count these events per start and
    ``threshold`` holds each start's current threshold; the engine logs a
    warning and reports them in the result.
    """

    threshold: torch.Tensor
    max_fraction: float = 0.5
    loss_ratio: float = 1.5
    loss_tol: float = 0.005
    backoff: float = 0.8
    min_pixels: int = 4

    def __post_init__(self):
        self.collapsed = torch.zeros_like(self.threshold)
        self.exploded = torch.zeros_like(self.threshold)
        self.best_loss = torch.full_like(self.threshold, float("inf"))
        self.best_support: torch.Tensor | None = None

    def check(self, support: torch.Tensor, loss: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Compare ``loss`` (the error of the estimate on ``support``) with the best so far.

        Returns ``(support, update)``: the supports to continue from (reverted
        where collapsing) and which starts may take a shrink-wrap update now.
        """
        K = support.shape[0]
        view = (K,) + (1,) * (support.ndim - 1)
        if self.best_support is None:
            self.best_support = support.clone()
        collapse = loss > self.loss_ratio * self.best_loss + self.loss_tol
        better = loss < self.best_loss
        self.best_loss = torch.where(better, loss, self.best_loss)
        self.best_support = torch.where(better.view(view), support, self.best_support)
        self.collapsed += collapse
        self.threshold = torch.where(collapse, self.threshold * self.backoff, self.threshold)
        support = torch.where(collapse.view(view), self.best_support, support)
        return support, ~collapse

    def accept(self, old: torch.Tensor, new: torch.Tensor, ndim: int) -> torch.Tensor:
        """``new`` where it neither explodes nor vanishes, else ``old`` (per start)."""
        dims = tuple(range(-ndim, 0))
        grid = math.prod(new.shape[-ndim:])
        n_new = new.sum(dim=dims)
        bad = (n_new > self.max_fraction * grid) | (n_new < self.min_pixels)
        self.exploded += bad
        return torch.where(bad.view(bad.shape + (1,) * ndim), old, new)
