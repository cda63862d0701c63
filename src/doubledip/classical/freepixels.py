"""Held-out ("free") detector pixels for choosing between random starts.

Neighbouring pixels of an oversampled pattern are correlated (the speckle is
wider than a pixel), so single held-out pixels would be predicted by their
neighbours and the free error would flatter overfitting; we hold out small
islands instead, as PyNX does for its free log-likelihood
(V. Favre-Nicolin et al., J. Appl. Cryst. 53, 1404 (2020)).
"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["free_islands"]


def free_islands(valid: np.ndarray, fraction: float, *, radius: int = 1, rng: np.random.Generator) -> np.ndarray:
    """Pick about ``fraction`` of the measured pixels as islands of held-out pixels.

    Parameters
    ----------
    valid : ndarray of bool
        Measured pixels (any layout; islands are boxes of side ``2 * radius + 1``
        on the array grid, clipped at its edges and to measured pixels).
    fraction : float
        Target fraction of the measured pixels, in [0, 0.5); 0 holds out nothing.
    radius : int
        Island half-width in pixels (0 for single pixels).
    rng : numpy.random.Generator
        The only source of randomness.

    Returns
    -------
    ndarray of bool
        Held-out pixels, a subset of ``valid`` covering between ``fraction`` and
        ``fraction`` plus one island of the measured pixels.
    """
    valid = np.asarray(valid, dtype=bool)
    free = np.zeros(valid.shape, dtype=bool)
    target = int(round(fraction * valid.sum()))
    if target <= 0:
        return free
    offsets = np.array(list(itertools.product(range(-radius, radius + 1), repeat=valid.ndim)))
    shape = np.array(valid.shape)
    candidates = np.flatnonzero(valid)
    order = rng.permutation(candidates.size)
    covered = 0
    position = 0
    while covered < target and position < order.size:
        # enough centres for the rest, assuming no overlap; repeat until covered
        need = max(1, (target - covered) // offsets.shape[0])
        centres = candidates[order[position : position + need]]
        position += need
        coords = np.stack(np.unravel_index(centres, valid.shape), axis=-1)
        pixels = (coords[:, None, :] + offsets[None, :, :]).reshape(-1, valid.ndim)
        pixels = pixels[np.all((pixels >= 0) & (pixels < shape), axis=1)]
        free[tuple(pixels.T)] = True
        free &= valid
        covered = int(free.sum())
    return free
