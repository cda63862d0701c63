r"""Blur kernels: seeded motion and Gaussian generators, and kernel-size helpers.

Every kernel is a nonnegative ``float32`` array of odd side ``size`` whose entries
sum to one, centred on the index ``size // 2`` (a kernel of even size is grown by
one pixel: a centre pixel keeps the 'valid' convolution of
:mod:`doubledip.deblur.model` aligned with the central crop of the image).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

__all__ = ["KERNELS", "odd_size", "motion_kernel", "gaussian_kernel", "make_kernel", "embed_kernel",
           "centre_kernel", "normalise_kernel"]

KERNELS = ("motion", "gaussian")


def _rng(seed=None, rng=None) -> np.random.Generator:
    if rng is not None:
        return rng
    return np.random.default_rng(seed)


def odd_size(size: int) -> int:
    """``size`` rounded up to an odd number (a kernel with a centre pixel)."""
    size = int(size)
    if size < 1:
        raise ValueError(f"kernel size must be >= 1, got {size}")
    return size if size % 2 else size + 1


def normalise_kernel(kernel) -> np.ndarray:
    """Clip negative entries and scale the sum to one (float32); an all-zero kernel raises ValueError."""
    k = np.clip(np.asarray(kernel, dtype=np.float64), 0, None)
    total = k.sum()
    if not total > 0 or not np.isfinite(total):
        raise ValueError("a blur kernel needs a positive, finite sum")
    return (k / total).astype(np.float32)


def _splat(points: np.ndarray, size: int) -> np.ndarray:
    """Bilinear splat of (n, 2) sub-pixel positions (row, col) into a ``size x size`` grid."""
    out = np.zeros((size, size))
    base = np.floor(points).astype(int)
    frac = points - base
    for dy in (0, 1):
        for dx in (0, 1):
            w = (frac[:, 0] if dy else 1 - frac[:, 0]) * (frac[:, 1] if dx else 1 - frac[:, 1])
            r, c = base[:, 0] + dy, base[:, 1] + dx
            ok = (r >= 0) & (r < size) & (c >= 0) & (c < size)
            np.add.at(out, (r[ok], c[ok]), w[ok])
    return out


def motion_kernel(size: int, *, seed: int | None = None, rng: np.random.Generator | None = None,
                  steps: int = 2000, smoothness: float = 0.9, sigma: float = 0.5) -> np.ndarray:
    r"""A random camera-shake kernel: a smooth random trajectory rasterised into ``size x size``.

    The velocity of the trajectory is a random walk with inertia,
    :math:`v_{t+1} = s\, v_t + (1 - s)\,\xi_t` with complex Gaussian :math:`\xi_t` and
    ``smoothness`` :math:`s`; the path :math:`p_t = \sum v_t` is scaled so its bounding
    box spans ``size - 3`` pixels along its longer side, centred, splatted bilinearly
    with equal exposure per step, lightly smoothed (Gaussian of width ``sigma``) and
    normalised to sum one (after Boracchi & Foi, "Modeling the performance of image
    restoration from motion blur", IEEE TIP 21, 3502 (2012)).

    Parameters
    ----------
    size : int
        Side of the kernel (rounded up to odd).
    seed, rng
        Randomness (``rng`` wins).
    steps : int
        Samples along the trajectory.
    smoothness : float
        Inertia of the velocity in [0, 1).
    sigma : float
        Width of the final Gaussian smoothing in pixels (0: none).

    Returns
    -------
    ndarray, float32, ``(size, size)``
    """
    size = odd_size(size)
    rng = _rng(seed, rng)
    if size < 5:
        return gaussian_kernel(size, sigma=max(sigma, 0.5), rng=rng)
    v = np.zeros(steps, complex)
    v[0] = np.exp(2j * np.pi * rng.uniform())
    xi = rng.standard_normal(steps) + 1j * rng.standard_normal(steps)
    for t in range(1, steps):
        v[t] = smoothness * v[t - 1] + (1 - smoothness) * xi[t]
    p = np.cumsum(v)
    pts = np.stack([p.imag, p.real], axis=1)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = max(float((hi - lo).max()), 1e-9)
    pts = (pts - (lo + hi) / 2) * ((size - 3) / extent) + (size - 1) / 2
    k = _splat(pts, size)
    if sigma > 0:
        k = ndimage.gaussian_filter(k, sigma, mode="constant")
    return normalise_kernel(k)


def gaussian_kernel(size: int, *, sigma: float | tuple | None = None, angle: float | None = None,
                    seed: int | None = None, rng: np.random.Generator | None = None) -> np.ndarray:
    r"""An (anisotropic) Gaussian kernel :math:`\exp(-\tfrac12 r^T R \Sigma^{-2} R^T r)` on ``size x size``.

    With ``sigma=None`` the larger width is drawn in :math:`[0.6, 1]\,(size-1)/6` and the
    smaller one in :math:`[0.4, 1]` times it, at a random ``angle``: the 3-sigma
    ellipse fills the kernel box.  A scalar ``sigma`` is isotropic.

    Returns
    -------
    ndarray, float32, ``(size, size)`` summing to one
    """
    size = odd_size(size)
    rng = _rng(seed, rng)
    if sigma is None:
        big = rng.uniform(0.6, 1.0) * max(size - 1, 1) / 6
        sigma = (big, big * rng.uniform(0.4, 1.0))
    sy, sx = (float(sigma), float(sigma)) if np.isscalar(sigma) else (float(sigma[0]), float(sigma[1]))
    theta = rng.uniform(0, np.pi) if angle is None else float(angle)
    c = size // 2
    yy, xx = np.mgrid[:size, :size] - c
    u = math.cos(theta) * yy + math.sin(theta) * xx
    w = -math.sin(theta) * yy + math.cos(theta) * xx
    k = np.exp(-0.5 * ((u / max(sy, 1e-3)) ** 2 + (w / max(sx, 1e-3)) ** 2))
    return normalise_kernel(k)


def make_kernel(kind: str, size: int, *, seed: int | None = None, rng: np.random.Generator | None = None,
                **kwargs) -> np.ndarray:
    """A ``kind`` kernel (``"motion"`` or ``"gaussian"``) of side ``size``; see :func:`motion_kernel`."""
    if kind == "motion":
        return motion_kernel(size, seed=seed, rng=rng, **kwargs)
    if kind == "gaussian":
        return gaussian_kernel(size, seed=seed, rng=rng, **kwargs)
    raise ValueError(f"unknown kernel kind '{kind}'; use {', '.join(KERNELS)}")


def embed_kernel(kernel, size: int) -> np.ndarray:
    """Zero-pad (or centre-crop) a kernel to ``size x size`` keeping the centre pixel ``n // 2`` on ``size // 2``."""
    k = np.asarray(kernel)
    out = np.zeros((size, size), dtype=k.dtype)
    src, dst = [], []
    for n in k.shape:
        lo = size // 2 - n // 2
        a, b = max(lo, 0), min(lo + n, size)
        dst.append(slice(a, b))
        src.append(slice(a - lo, b - lo))
    out[tuple(dst)] = k[tuple(src)]
    return out


def centre_kernel(kernel) -> np.ndarray:
    """Shift a kernel by whole pixels so its centre of mass is nearest the centre pixel (content past the edge is lost)."""
    k = np.asarray(kernel, dtype=np.float64)
    total = k.sum()
    if not total > 0:
        return np.asarray(kernel)
    grids = np.mgrid[tuple(slice(0, n) for n in k.shape)]
    shift = [int(round(n // 2 - float((g * k).sum() / total))) for g, n in zip(grids, k.shape)]
    return ndimage.shift(k, shift, order=0, mode="constant").astype(np.asarray(kernel).dtype)
