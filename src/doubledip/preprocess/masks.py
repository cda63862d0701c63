"""Masks of unmeasured pixels (nonzero = unmeasured): zeros, negatives, saturation, detector gaps, dilation.

Every function returns a boolean array of the pattern's shape, ``True`` where
the pixel must be left out of the data terms.  Combine them with ``|``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = ["zero_mask", "negative_mask", "saturated_mask", "gap_mask", "dilate_mask", "ball"]


def zero_mask(intensity) -> np.ndarray:
    """Pixels that hold exactly 0: *unmeasured* rather than measured zeros.

    Use it when the detector writes 0 for dead pixels or gaps.  Where zeros
    are weak signal (photon counting far from the centre), they are
    measurements and must stay unmasked.
    """
    return np.asarray(intensity) == 0


def negative_mask(intensity) -> np.ndarray:
    """Pixels below 0 (flags, or noise left by a background subtraction)."""
    return np.asarray(intensity) < 0


def saturated_mask(intensity, level: float) -> np.ndarray:
    """Pixels at or above ``level`` counts (saturated or flagged, e.g. 65535 on a 16-bit detector)."""
    return np.asarray(intensity) >= level


def gap_mask(intensity, mask=None) -> np.ndarray:
    """Detector gaps: whole lines (planes in 3D) of the detector that hold no counts.

    A hyperplane ``index[a] == i`` (a row or a column in 2D) is a gap when every
    pixel on it is zero or already masked while some pixel on it is not yet
    masked.  Gaps that cross only part of the detector (one module) are not
    found; give those in a mask file.

    Parameters
    ----------
    intensity : ndarray
        The pattern.
    mask : ndarray, optional
        Pixels already known to be unmeasured.
    """
    intensity = np.asarray(intensity)
    known = np.zeros(intensity.shape, bool) if mask is None else np.asarray(mask) != 0
    empty = (intensity == 0) | known
    gaps = np.zeros(intensity.shape, bool)
    for axis in range(intensity.ndim):
        others = tuple(a for a in range(intensity.ndim) if a != axis)
        lines = empty.all(axis=others) & ~known.all(axis=others)
        view = [1] * intensity.ndim
        view[axis] = -1
        gaps |= lines.reshape(view)
    return gaps


def ball(radius: int, ndim: int) -> np.ndarray:
    """Boolean disk (``ndim=2``) or ball of integer ``radius``: offsets ``|d| <= radius``."""
    grid = np.ogrid[tuple(slice(-radius, radius + 1) for _ in range(ndim))]
    return sum(g.astype(np.float64) ** 2 for g in grid) <= radius**2 + 1e-9


def dilate_mask(mask, pixels: int) -> np.ndarray:
    r"""Grow the masked region by ``pixels`` (Euclidean ball structuring element).

    .. math:: M' = M \oplus B_k, \qquad B_k = \{d \in \mathbb{Z}^n : |d| \le k\}

    so every pixel within distance ``k`` of a masked pixel becomes masked --
    the usual guard band around a beamstop edge, blooming saturated pixels
    and module borders.
    """
    mask = np.asarray(mask) != 0
    if pixels <= 0 or not mask.any():
        return mask
    return ndimage.binary_dilation(mask, structure=ball(int(pixels), mask.ndim))
