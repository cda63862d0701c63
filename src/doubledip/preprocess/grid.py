r"""The pattern grid: integer shifts, crop/pad, binning, background threshold, oversampling.

Conventions: the zero frequency belongs at index ``N // 2`` on every axis (the
detector convention of :mod:`doubledip.fft`).  Pixels that enter the grid from
outside the detector (a shift or a pad) are *masked* (unmeasured, intensity
0), never measured zeros.  Intensities are never interpolated: a sub-pixel
shift would mix neighbouring counts and break their Poisson statistics, so
shifts are whole pixels and a residual offset below half a pixel remains (it
becomes a linear phase ramp on the object, see
:func:`doubledip.postprocess.remove_phase_ramp`).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from doubledip import fft

__all__ = [
    "extract",
    "shift_to_centre",
    "crop_or_pad",
    "bin_pattern",
    "apply_threshold",
    "estimate_oversampling",
    "auto_bin",
    "window_start",
]


def _check(intensity, mask):
    intensity = np.asarray(intensity)
    mask = np.zeros(intensity.shape, bool) if mask is None else np.asarray(mask) != 0
    if mask.shape != intensity.shape:
        raise ValueError(f"mask shape {mask.shape} != intensity shape {intensity.shape}")
    return intensity, mask


def extract(intensity, mask, start, shape) -> tuple[np.ndarray, np.ndarray]:
    """The window ``[start, start + shape)`` of the pattern; outside the detector masked.

    ``out[i] = intensity[start + i]`` where ``start + i`` lies on the detector,
    otherwise ``out[i] = 0`` with ``mask = 1``.  Any integer ``start`` (negative
    pads in front) and any ``shape`` (larger pads behind).

    Returns
    -------
    (ndarray, ndarray)
        Intensity (dtype of the input) and mask (uint8), both of ``shape``.
    """
    intensity, mask = _check(intensity, mask)
    shape = tuple(int(s) for s in shape)
    start = tuple(int(s) for s in start)
    if len(shape) != intensity.ndim or len(start) != intensity.ndim:
        raise ValueError(f"start {start} and shape {shape} need {intensity.ndim} values")
    out = np.zeros(shape, intensity.dtype)
    out_mask = np.ones(shape, np.uint8)
    src, dst = [], []
    for s, n_out, n_in in zip(start, shape, intensity.shape):
        lo, hi = max(s, 0), min(s + n_out, n_in)
        if hi <= lo:
            return out, out_mask
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = intensity[tuple(src)]
    out_mask[tuple(dst)] = mask[tuple(src)]
    out[out_mask != 0] = 0
    return out, out_mask


def window_start(centre, shape, factor: int = 1) -> tuple[int, ...]:
    r"""Where a window must start so that ``centre`` lands on the output centre.

    For an output of ``shape`` binned by ``factor`` = :math:`K`, output pixel
    :math:`b` collects input pixels :math:`t + bK \ldots t + bK + K - 1`, whose
    middle is :math:`t + bK + (K-1)/2`.  Friedel symmetry about output index
    ``n // 2`` needs :math:`t = c - (n//2) K - (K-1)/2`, rounded to the nearest
    integer (halves round up).
    """
    return tuple(int(math.floor(float(c) - (n // 2) * factor - (factor - 1) / 2 + 0.5))
                 for c, n in zip(centre, shape))


def shift_to_centre(intensity, mask, centre) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    """Move ``centre`` (float per axis) to index ``N // 2`` by a whole-pixel shift.

    The shape is kept; pixels shifted in from outside the detector are masked,
    pixels shifted out are dropped.

    Returns
    -------
    (ndarray, ndarray, tuple of int)
        Intensity, mask (uint8) and the shift applied (``out[i] = in[i - shift]``).
    """
    intensity, mask = _check(intensity, mask)
    start = window_start(centre, intensity.shape)
    out, out_mask = extract(intensity, mask, start, intensity.shape)
    return out, out_mask, tuple(-s for s in start)


def crop_or_pad(intensity, mask, size) -> tuple[np.ndarray, np.ndarray]:
    """Crop or pad to ``size`` (int, or one per axis) keeping index ``N // 2`` at ``size // 2``.

    Padded pixels are masked.
    """
    intensity, mask = _check(intensity, mask)
    shape = _as_shape(size, intensity.ndim)
    start = tuple(n // 2 - m // 2 for n, m in zip(intensity.shape, shape))
    return extract(intensity, mask, start, shape)


def _as_shape(size, ndim: int) -> tuple[int, ...]:
    shape = (int(size),) * ndim if np.isscalar(size) else tuple(int(s) for s in size)
    if len(shape) != ndim:
        raise ValueError(f"size {size} needs 1 or {ndim} values")
    return shape


def bin_pattern(intensity, mask, factor: int, *, rule: str = "any") -> tuple[np.ndarray, np.ndarray]:
    r"""Sum counts over :math:`K^d` blocks of pixels (``K`` = ``factor``).

    .. math:: I'_b = \sum_{j \in \text{block}(b),\ \text{measured}} I_j

    Binned pixel ``b`` is masked

    * ``rule="any"`` (default): if *any* of its pixels is masked.  Every
      measured binned pixel is then a plain sum of counts (still Poisson).
    * ``rule="majority"``: if *more than half* of its pixels are masked.  A
      partly measured block is scaled to the full block,
      :math:`I'_b = \frac{K^d}{n_b} \sum I_j` over its :math:`n_b` measured
      pixels -- fewer masked pixels, but these values are estimates, not counts.

    Trailing rows that do not fill a block are dropped (use :func:`extract`
    first to choose which).  Binning by ``K`` divides the oversampling by
    ``K`` and the field of view in real space too.

    Returns
    -------
    (ndarray, ndarray)
        Binned intensity (float32) and mask (uint8), shape ``N // K`` per axis.
    """
    intensity, mask = _check(intensity, mask)
    factor = int(factor)
    if factor < 1:
        raise ValueError(f"bin factor must be >= 1, got {factor}")
    if rule not in ("any", "majority"):
        raise ValueError(f"unknown binning mask rule '{rule}'; use 'any' or 'majority'")
    if factor == 1:
        return intensity.astype(np.float32), mask.astype(np.uint8)
    shape = tuple(n // factor for n in intensity.shape)
    if min(shape) < 1:
        raise ValueError(f"bin factor {factor} is larger than the pattern {intensity.shape}")
    crop = tuple(slice(0, n * factor) for n in shape)
    blocks = [x for n in shape for x in (n, factor)]
    axes = tuple(range(1, 2 * len(shape), 2))
    measured = ~mask[crop]
    values = np.where(measured, intensity[crop], 0).astype(np.float64)
    total = values.reshape(blocks).sum(axis=axes)
    count = measured.reshape(blocks).sum(axis=axes)
    full = factor ** intensity.ndim
    if rule == "any":
        out_mask = count < full
    else:
        out_mask = 2 * count <= full
        total = np.where(out_mask, 0.0, total * full / np.maximum(count, 1))
    total[out_mask] = 0
    return total.astype(np.float32), out_mask.astype(np.uint8)


def apply_threshold(intensity, threshold: float) -> tuple[np.ndarray, int]:
    """Set values below ``threshold`` to 0 (measured zeros: background below the noise floor).

    Returns the new array and how many nonzero pixels were set to 0.
    """
    intensity = np.asarray(intensity)
    below = (intensity < threshold) & (intensity != 0)
    return np.where(below, 0, intensity).astype(intensity.dtype), int(np.count_nonzero(below))


def estimate_oversampling(intensity, mask=None, *, level: float = 0.01) -> dict:
    r"""Estimate the linear oversampling per axis from the extent of the autocorrelation.

    The inverse transform of the intensity is the autocorrelation of the
    object, :math:`A = F^{-1} I = x \star x`, whose support is twice the
    object's extent :math:`w` along each axis.  With :math:`|A|` thresholded
    at ``level`` times its maximum, the connected region around the origin
    (index ``N // 2``) spans :math:`e_a` pixels along axis ``a``, so
    :math:`w_a \approx (e_a + 1)/2` and the oversampling is

    .. math:: \sigma_a = N_a / w_a = 2 N_a / (e_a + 1),

    the ratio of the pattern size to the object size, which must be at least
    2 per axis for phase retrieval (Miao, Sayre & Chapman, JOSA A 15, 1662
    (1998), who count it per dimension; here "oversampling" is the linear
    ratio).  Masked pixels are set to 0 first; a large beamstop removes the low
    frequencies and widens :math:`|A|`, so the estimate is then low
    (conservative: less binning).  The pattern need not be centred (a shift
    only changes the phase of :math:`A`).

    Returns
    -------
    dict
        ``oversampling`` (list of float per axis), ``object_extent`` (``w_a``,
        pixels), ``autocorrelation_extent`` (``e_a``), ``level``.
    """
    intensity, mask = _check(intensity, mask)
    values = np.where(mask, 0.0, np.asarray(intensity, np.float64))
    ac = np.abs(fft.icfft(values, values.ndim))
    origin = tuple(n // 2 for n in values.shape)
    peak = ac.max()
    if not peak > 0:
        raise ValueError("the pattern is zero at every measured pixel")
    labels, _ = ndimage.label(ac >= level * peak)
    region = labels == labels[origin] if labels[origin] else ac >= level * peak
    extent = []
    for axis in range(values.ndim):
        others = tuple(a for a in range(values.ndim) if a != axis)
        hit = np.nonzero(region.any(axis=others))[0]
        extent.append(int(hit[-1] - hit[0] + 1))
    width = [(e + 1) / 2 for e in extent]
    return {
        "oversampling": [float(n / w) for n, w in zip(values.shape, width)],
        "object_extent": [float(w) for w in width],
        "autocorrelation_extent": extent,
        "level": float(level),
    }


def auto_bin(oversampling, *, target: float = 2.5) -> int:
    r"""The largest integer bin factor that keeps the oversampling at least ``target`` on every axis.

    .. math:: K = \max\left(1, \left\lfloor \min_a \sigma_a / \sigma_\text{target} \right\rfloor\right)

    Only binning changes the oversampling: cropping the pattern keeps the
    pixel size in Fourier space, hence the field of view, and coarsens the
    real-space pixel (the resolution) instead.  ``target = 2.5`` leaves the
    object in less than half the field of view with a margin, as the
    generators of ``ddip`` (half the pattern size) need; oversampling 2 is
    the information limit.
    """
    lowest = float(np.min(oversampling))
    return max(1, int(math.floor(lowest / float(target))))
