r"""Where is the zero frequency?  Centre of mass and Friedel (centro-symmetry) centre.

Both return the centre as a float per axis, in pixel indices of the array
given (``(y, x)`` or ``(z, y, x)``).  Masked pixels (nonzero ``mask``) never
contribute.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.fft

__all__ = ["centre_of_mass", "friedel_centre", "friedel_correlation"]

log = logging.getLogger(__name__)


def _measured(intensity, mask) -> np.ndarray:
    if mask is None:
        return np.ones(np.shape(intensity), bool)
    mask = np.asarray(mask)
    if mask.shape != np.shape(intensity):
        raise ValueError(f"mask shape {mask.shape} != intensity shape {np.shape(intensity)}")
    return mask == 0


def _weights(intensity, mask, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    intensity = np.asarray(intensity, dtype=np.float64)
    measured = _measured(intensity, mask)
    keep = measured & (intensity > threshold) & np.isfinite(intensity)
    return np.where(keep, intensity, 0.0), measured


def centre_of_mass(intensity, mask=None, *, threshold: float = 0.0) -> tuple[float, ...]:
    r"""Intensity-weighted centre of mass over measured pixels.

    .. math:: c_a = \frac{\sum_j j_a\, w_j I_j}{\sum_j w_j I_j}, \qquad
              w_j = [\text{measured}_j]\,[I_j > T]

    For a Friedel-symmetric pattern, :math:`I(c+q) = I(c-q)`, and a mask that is
    itself symmetric about ``c`` (a centred beamstop) this is ``c``.  Pixels at
    or below ``threshold`` (background) are left out so a flat background does
    not pull the centre towards the middle of the detector.

    Parameters
    ----------
    intensity : ndarray
        Pattern, any number of axes.
    mask : ndarray, optional
        Nonzero = unmeasured (left out).
    threshold : float
        Background level ``T``; only pixels with :math:`I > T` count.

    Returns
    -------
    tuple of float
        The centre, one float per axis (pixel index units).

    Raises
    ------
    ValueError
        No measured pixel above the threshold.
    """
    weights, _ = _weights(intensity, mask, threshold)
    total = weights.sum()
    if not total > 0:
        raise ValueError(f"no measured pixel above the threshold {threshold:g}: cannot find a centre of mass")
    centre = []
    for axis in range(weights.ndim):
        others = tuple(a for a in range(weights.ndim) if a != axis)
        profile = weights.sum(axis=others)
        centre.append(float(np.dot(profile, np.arange(weights.shape[axis])) / total))
    return tuple(centre)


def _linear_convolutions(pairs, shape):
    """Full linear convolutions ``a * b`` of several pairs of arrays, sharing the forward FFTs."""
    size = [scipy.fft.next_fast_len(2 * n - 1, real=True) for n in shape]
    axes = tuple(range(len(shape)))
    cache = {}

    def spectrum(key, array):
        if key not in cache:
            cache[key] = scipy.fft.rfftn(array, s=size, axes=axes)
        return cache[key]

    out = []
    crop = tuple(slice(0, 2 * n - 1) for n in shape)
    for (ka, a), (kb, b) in pairs:
        conv = scipy.fft.irfftn(spectrum(ka, a) * spectrum(kb, b), s=size, axes=axes)
        out.append(conv[crop])
    return out


def friedel_correlation(intensity, mask=None, *, threshold: float = 0.0, amplitude: bool = True,
                        min_overlap: float = 0.5) -> np.ndarray:
    r"""Normalised centro-symmetry score for every candidate centre on the half-pixel grid.

    With :math:`W = \sqrt{I}` (or :math:`I`) on measured pixels above the
    threshold and 0 elsewhere, :math:`M` the measured indicator, the score of
    the candidate centre :math:`c = s/2` is

    .. math:: C(s) = \frac{(W * W)(s)}{(W^2 * M)(s)}
              = \frac{\sum_j W_j W_{s-j}}{\sum_j W_j^2 M_{s-j}},

    the correlation of the pattern with its point reflection about
    :math:`c`, :math:`\sum_q W(c+q) W(c-q)`, over the pixels where both
    :math:`c \pm q` are measured.  By Cauchy-Schwarz :math:`0 \le C \le 1`, and
    :math:`C = 1` for an exactly Friedel-symmetric pattern
    (:math:`I(c+q) = I(c-q)`, true for the far field of a real object).  The
    self-convolution evaluates every integer ``s`` (every half-pixel centre)
    at once by FFT (zero-padded, so not circular).  Only candidates whose
    point reflection keeps at least a fraction :math:`f` (``min_overlap``) of
    the array along every axis are admitted, i.e. centres within
    :math:`(1 - f) N_a / 2` of the middle :math:`(N_a - 1)/2`; the others get
    ``-inf``: with little overlap a few pixels could look perfectly symmetric,
    and a periodic (rolled) pattern has a spurious symmetry centre half a
    period away.  The default 0.5 admits centres up to ``N / 4`` from the middle.

    Parameters
    ----------
    intensity : ndarray
        Pattern, any number of axes.
    mask : ndarray, optional
        Nonzero = unmeasured.
    threshold : float
        Pixels at or below it do not count (background).
    amplitude : bool
        Correlate amplitudes :math:`\sqrt{I}` (default: less dominated by the
        brightest pixels) or intensities.
    min_overlap : float
        Smallest admissible overlap of the pattern and its reflection, per axis
        (a fraction of the axis length).

    Returns
    -------
    ndarray, float64, shape ``2 N - 1`` per axis
        ``C(s)``; index ``s`` is the candidate centre ``s / 2``.
    """
    weights, measured = _weights(intensity, mask, threshold)
    if amplitude:
        weights = np.sqrt(weights)
    m = measured.astype(np.float64)
    num, den, overlap = _linear_convolutions(
        [(("w", weights), ("w", weights)), (("w2", weights**2), ("m", m)), (("m", m), ("m", m))],
        weights.shape,
    )
    scale = max(float(den.max()), 1e-300)
    valid = (overlap >= 0.5) & (den > 1e-9 * scale)
    for axis, n in enumerate(weights.shape):
        view = [1] * weights.ndim
        view[axis] = -1
        centre = np.arange(2 * n - 1) / 2.0
        valid &= (np.abs(centre - (n - 1) / 2.0) <= (1.0 - min_overlap) * n / 2.0 + 1e-9).reshape(view)
    score = np.full(num.shape, -np.inf)
    score[valid] = num[valid] / den[valid]
    return score


def _parabola_offset(minus: float, centre: float, plus: float) -> float:
    """Vertex of the parabola through (-1, minus), (0, centre), (1, plus), clipped to [-0.5, 0.5]."""
    if not (np.isfinite(minus) and np.isfinite(plus)):
        return 0.0
    curvature = minus - 2 * centre + plus
    if curvature >= 0:
        return 0.0
    return float(np.clip(0.5 * (minus - plus) / curvature, -0.5, 0.5))


def friedel_centre(intensity, mask=None, *, threshold: float = 0.0, amplitude: bool = True,
                   min_overlap: float = 0.5, guess=None, search: float | None = None,
                   return_score: bool = False):
    r"""The centre of best Friedel (centro-)symmetry, to sub-pixel precision.

    Maximises the score :math:`C(s)` of :func:`friedel_correlation` over
    :math:`s = 2c`, i.e. the correlation of :math:`I(q)` with :math:`I(-q)`
    about the candidate centre :math:`c` over integer and half-integer
    centres, then refines each axis by the vertex of a parabola through the
    maximum and its two neighbours.  Friedel's law :math:`I(q) = I(-q)` holds
    for the far field of a real (or weakly absorbing, weak-phase) object, the
    usual plane-wave CDI case (Miao et al., PNAS 100, 110 (2003)); patterns of
    strongly phased objects (strained crystals in Bragg CDI) are not
    centro-symmetric -- use :func:`centre_of_mass` there.

    Parameters
    ----------
    intensity, mask, threshold, amplitude, min_overlap
        As for :func:`friedel_correlation`.
    guess : sequence of float, optional
        Restrict the search to centres within ``search`` pixels of ``guess``.
    search : float, optional
        Search radius in pixels around ``guess`` (ignored without ``guess``).
    return_score : bool
        Also return the best score :math:`C \in [0, 1]` (1 = perfectly symmetric).

    Returns
    -------
    tuple of float, or (tuple of float, float)
        The centre (pixel indices), and the score with ``return_score``.

    Raises
    ------
    ValueError
        No admissible candidate (nothing measured above the threshold).
    """
    score = friedel_correlation(intensity, mask, threshold=threshold, amplitude=amplitude,
                                min_overlap=min_overlap)
    if guess is not None and search is not None:
        grids = np.ogrid[tuple(slice(0, n) for n in score.shape)]
        dist2 = sum((g / 2.0 - float(c)) ** 2 for g, c in zip(grids, guess))
        score = np.where(dist2 <= float(search) ** 2, score, -np.inf)
    if not np.isfinite(score).any():
        raise ValueError("no candidate centre: nothing measured above the threshold")
    peak = np.unravel_index(int(np.argmax(score)), score.shape)
    best = float(score[peak])
    centre = []
    for axis, s in enumerate(peak):
        def at(offset):
            index = list(peak)
            index[axis] = s + offset
            return float(score[tuple(index)]) if 0 <= s + offset < score.shape[axis] else -np.inf

        centre.append((s + _parabola_offset(at(-1), best, at(1))) / 2.0)
    log.debug("Friedel centre %s, score %.4f", centre, best)
    centre = tuple(centre)
    return (centre, best) if return_score else centre
