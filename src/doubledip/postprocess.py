r"""Post-processing of reconstructed objects: centring, phase ramp, global phase, apodization, unwrapping.

A far-field reconstruction is defined only up to a translation, a global phase
and the twin image; a residual off-centring of the pattern (less than a pixel
after :mod:`doubledip.preprocess`) adds a linear phase ramp.  These functions
choose one representative so that reconstructions can be compared, averaged
and exported:

* :func:`centre_object` moves the centre of mass of the magnitude to ``N // 2``,
* :func:`remove_phase_ramp` removes the mean phase gradient,
* :func:`set_global_phase` makes the mean phase in the support 0,
* :func:`apodize` multiplies the spectrum by a window (less ringing),
* :func:`support_from_magnitude` thresholds the magnitude,
* :func:`unwrap_phase` removes the :math:`2\pi` jumps inside the support,
* :func:`average_aligned` averages consistent reconstructions (best starts),

and :func:`postprocess` chains them.  All work on 2D and 3D arrays (the
array's ``ndim``), on the pattern grid with the origin at ``N // 2``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, sparse
from scipy.sparse import linalg as splinalg

from doubledip import fft

__all__ = [
    "Postprocessed",
    "postprocess",
    "support_from_magnitude",
    "centre_object",
    "remove_phase_ramp",
    "set_global_phase",
    "apodize",
    "unwrap_phase",
    "average_aligned",
    "WINDOWS",
]

log = logging.getLogger(__name__)

WINDOWS = ("tukey", "hann", "gaussian")


def _support(obj: np.ndarray, support) -> np.ndarray:
    if support is None:
        return np.ones(obj.shape, bool)
    support = np.asarray(support) != 0
    if support.shape != obj.shape:
        raise ValueError(f"support shape {support.shape} != object shape {obj.shape}")
    return support


def support_from_magnitude(obj, *, threshold: float = 0.1, sigma: float = 0.0) -> np.ndarray:
    r"""Support estimate: where the (optionally smoothed) magnitude exceeds a fraction of its maximum.

    .. math:: S = \{ r : (G_\sigma * |x|)(r) > t \max (G_\sigma * |x|) \}

    the shrink-wrap rule (Marchesini et al., Phys. Rev. B 68, 140101 (2003))
    applied once.  ``sigma = 0`` uses the magnitude as it is.
    """
    mag = np.abs(np.asarray(obj))
    if sigma > 0:
        mag = ndimage.gaussian_filter(mag.astype(np.float64), sigma, mode="wrap")
    peak = mag.max()
    if not peak > 0:
        return np.zeros(mag.shape, bool)
    return mag > threshold * peak


def _circular_centre(weights: np.ndarray) -> list[float]:
    """Centre of mass on the periodic grid: the angle of the first Fourier coefficient per axis."""
    total = weights.sum()
    centre = []
    for axis, n in enumerate(weights.shape):
        others = tuple(a for a in range(weights.ndim) if a != axis)
        profile = weights.sum(axis=others)
        phasor = np.dot(profile, np.exp(2j * np.pi * np.arange(n) / n)) / total
        centre.append(float(np.angle(phasor) * n / (2 * np.pi)) % n)
    return centre


def _fourier_shift(obj: np.ndarray, shift) -> np.ndarray:
    r"""``x(r - s)`` for real-valued ``s``: the spectrum times :math:`e^{-2\pi i\, q\cdot s/N}`."""
    phase = sum(q * (float(s) / n) for q, s, n in zip(fft.frequency_grid(obj.shape), shift, obj.shape))
    return fft.icfft(fft.cfft(obj, obj.ndim) * np.exp(-2j * np.pi * phase), obj.ndim)


def centre_object(obj, support=None, *, subpixel: bool = False):
    r"""Move the centre of mass of the magnitude (inside the support) to index ``N // 2``.

    The centre is taken on the periodic grid, so an object wrapped around the
    edges is centred correctly:

    .. math:: c_a = \frac{N_a}{2\pi} \arg \sum_r w(r)\, e^{2\pi i\, r_a / N_a},
              \qquad w = |x|\, S

    (the first Fourier coefficient of the marginal; it equals the usual
    centre of mass for an object well inside the array).  The object moves
    by :math:`s = N//2 - c`: rounded to whole pixels (``np.roll``, exact), or
    exactly with ``subpixel=True`` by the Fourier shift theorem
    :math:`x(r - s) = F^{-1}[e^{-2\pi i q\cdot s/N} F x]` (the support then moves
    by the rounded shift).

    Returns
    -------
    (ndarray, ndarray, tuple of float)
        The centred object (complex64), support (bool) and the shift applied.
    """
    obj = np.asarray(obj)
    support = _support(obj, support)
    weights = np.abs(obj).astype(np.float64) * support
    if not weights.sum() > 0:
        return obj.astype(np.complex64), support, (0.0,) * obj.ndim
    centre = _circular_centre(weights)
    shift = [((n // 2 - c + n / 2) % n) - n / 2 for c, n in zip(centre, obj.shape)]
    whole = tuple(int(np.round(s)) for s in shift)
    axes = tuple(range(obj.ndim))
    support = np.roll(support, whole, axis=axes)
    if subpixel:
        return _fourier_shift(obj, shift).astype(np.complex64), support, tuple(float(s) for s in shift)
    return np.roll(obj, whole, axis=axes).astype(np.complex64), support, tuple(float(s) for s in whole)


def _ramp(shape, gradient) -> np.ndarray:
    return sum(g * r for g, r in zip(gradient, fft.frequency_grid(shape)))


def remove_phase_ramp(obj, support=None) -> tuple[np.ndarray, tuple[float, ...]]:
    r"""Remove a linear phase ramp :math:`e^{i\, g\cdot r}`, estimated without unwrapping.

    The gradient along axis ``a`` is the angle of the magnitude-weighted mean
    phase difference of neighbours inside the support:

    .. math:: g_a = \arg \sum_{r,\ r + e_a \in S} x(r + e_a)\, \overline{x(r)},

    each term weighting the wrapped difference
    :math:`\varphi(r+e_a) - \varphi(r)` by :math:`|x(r+e_a)||x(r)|`.  It works
    with wrapped phases as long as the ramp is below :math:`\pi` per pixel
    (always, for a ramp from a sub-pixel pattern offset).  Multiplying ``x`` by
    any ramp :math:`e^{i k\cdot r}` adds exactly ``k`` to ``g``, so the result is
    the same for ``x`` and ``x e^{i k\cdot r}`` up to a global phase.  The ramp
    is removed about index ``N // 2``: :math:`x \, e^{-i g\cdot (r - N//2)}`.
    A ramp in real space is a shift of the pattern (of :math:`g N / 2\pi`
    pixels); in Bragg CDI a uniform strain offset.

    Returns
    -------
    (ndarray, tuple of float)
        The object (complex64) and the gradient removed (radians per pixel, per axis).
    """
    obj = np.asarray(obj, dtype=np.complex128)
    support = _support(obj, support)
    gradient = []
    for axis in range(obj.ndim):
        ahead = [slice(None)] * obj.ndim
        behind = [slice(None)] * obj.ndim
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        pairs = support[tuple(ahead)] & support[tuple(behind)]
        products = obj[tuple(ahead)] * np.conj(obj[tuple(behind)])
        total = products[pairs].sum()
        gradient.append(float(np.angle(total)) if abs(total) > 0 else 0.0)
    out = obj * np.exp(-1j * _ramp(obj.shape, gradient))
    return out.astype(np.complex64), tuple(gradient)


def set_global_phase(obj, support=None) -> tuple[np.ndarray, float]:
    r"""Multiply by :math:`e^{-i\varphi_0}` so that the mean phase in the support is 0.

    .. math:: \varphi_0 = \arg \sum_{r \in S} x(r) = \arg \sum_{r\in S} |x(r)|\, e^{i\varphi(r)},

    the magnitude-weighted circular mean of the phase (no unwrapping needed).

    Returns
    -------
    (ndarray, float)
        The object (complex64) and :math:`\varphi_0` (radians).
    """
    obj = np.asarray(obj)
    total = obj[_support(obj, support)].astype(np.complex128).sum()
    phase = float(np.angle(total)) if abs(total) > 0 else 0.0
    return (obj * np.exp(-1j * phase)).astype(np.complex64), phase


def _window(shape, kind: str, alpha: float, sigma: float) -> np.ndarray:
    window = np.ones(shape)
    for q, n in zip(fft.frequency_grid(shape), shape):
        u = np.abs(q) / (n / 2.0)
        if kind == "hann":
            w = np.cos(0.5 * np.pi * u) ** 2
        elif kind == "tukey":
            flat = 1.0 - alpha
            w = np.where(u <= flat, 1.0, 0.5 * (1 + np.cos(np.pi * np.clip(u - flat, 0, None) / max(alpha, 1e-12))))
        else:
            w = np.exp(-2 * (np.pi * sigma * q / n) ** 2)
        window = window * w
    return window


def apodize(obj, *, window: str = "tukey", alpha: float = 0.5, sigma: float = 1.0) -> np.ndarray:
    r"""Multiply the spectrum of the object by a window: fewer ringing artefacts, a bit less resolution.

    With :math:`u_a = q_a / (N_a / 2) \in [-1, 1)` the signed frequency of axis
    ``a`` (zero frequency at ``N // 2``), the separable window
    :math:`W(q) = \prod_a w(u_a)` is

    * ``"hann"``: :math:`w(u) = \cos^2(\pi u / 2)`;
    * ``"tukey"``: 1 for :math:`|u| \le 1 - \alpha`, then a cosine taper
      :math:`\tfrac12 [1 + \cos(\pi (|u| - 1 + \alpha)/\alpha)]` to 0 at
      :math:`|u| = 1` (``alpha = 1`` is Hann, ``alpha = 0`` no window);
    * ``"gaussian"``: :math:`w = e^{-2\pi^2 \sigma^2 q^2 / N^2}`, a Gaussian blur
      of ``sigma`` pixels in real space.

    (Harris, Proc. IEEE 66, 51 (1978).)  Then :math:`x' = F^{-1}[W \cdot F x]`.
    """
    obj = np.asarray(obj)
    if window not in WINDOWS:
        raise ValueError(f"unknown window '{window}'; known windows are {', '.join(WINDOWS)}")
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha {alpha} must lie in [0, 1]")
    if window == "gaussian" and not sigma > 0:
        raise ValueError(f"sigma {sigma} must be positive")
    spectrum = fft.cfft(obj.astype(np.complex128), obj.ndim)
    return fft.icfft(spectrum * _window(obj.shape, window, alpha, sigma), obj.ndim).astype(np.complex64)


def unwrap_phase(obj, support=None, *, tol: float = 1e-8) -> np.ndarray:
    r"""Least-squares phase unwrapping inside the support.

    Finds the phase :math:`\psi` on the support pixels that best fits the
    wrapped phase differences of face neighbours (both in the support),

    .. math:: \min_\psi \sum_{(r, r + e_a)} \big(\psi(r + e_a) - \psi(r)
              - \operatorname{wrap}[\varphi(r + e_a) - \varphi(r)]\big)^2,

    with :math:`\operatorname{wrap}[\cdot] = \arg x(r + e_a)\overline{x(r)}` --
    the unweighted least-squares unwrapping of Ghiglia & Romero (JOSA A 11,
    107 (1994); Ghiglia & Pritt, *Two-dimensional phase unwrapping*, Wiley
    1998) on the support graph, solved by conjugate gradients on its graph
    Laplacian.  Exact when the true phase changes by less than :math:`\pi`
    between neighbours; phase vortices (dislocations) cannot be unwrapped and
    are smeared.  Each connected part of the support gets the constant that
    makes :math:`\psi` agree with the wrapped phase modulo :math:`2\pi` on
    average (magnitude-weighted circular mean).

    Returns
    -------
    ndarray, float64
        The unwrapped phase on the support, NaN outside it.
    """
    obj = np.asarray(obj, dtype=np.complex128)
    support = _support(obj, support)
    out = np.full(obj.shape, np.nan)
    n = int(support.sum())
    if n == 0:
        return out
    index = np.full(obj.shape, -1, dtype=np.int64)
    index[support] = np.arange(n)
    rows, cols, diffs = [], [], []
    for axis in range(obj.ndim):
        ahead = [slice(None)] * obj.ndim
        behind = [slice(None)] * obj.ndim
        ahead[axis], behind[axis] = slice(1, None), slice(None, -1)
        i_a, i_b = index[tuple(ahead)], index[tuple(behind)]
        pairs = (i_a >= 0) & (i_b >= 0)
        rows.append(i_a[pairs])
        cols.append(i_b[pairs])
        diffs.append(np.angle(obj[tuple(ahead)][pairs] * np.conj(obj[tuple(behind)][pairs])))
    ahead_i, behind_i, d = np.concatenate(rows), np.concatenate(cols), np.concatenate(diffs)
    m = len(d)
    psi = np.zeros(n)
    if m:
        edges = np.arange(m)
        incidence = sparse.csr_matrix(
            (np.concatenate([np.ones(m), -np.ones(m)]), (np.concatenate([edges, edges]),
                                                          np.concatenate([ahead_i, behind_i]))), shape=(m, n))
        laplacian = (incidence.T @ incidence).tocsr()
        rhs = incidence.T @ d
        degree = laplacian.diagonal()
        preconditioner = sparse.diags(1.0 / np.maximum(degree, 1.0))
        psi, info = splinalg.cg(laplacian, rhs, rtol=tol, atol=0.0, maxiter=20 * n + 100, M=preconditioner)
        if info != 0:
            log.warning("phase unwrapping did not converge (%d)", info)
    labels, count = ndimage.label(support)
    wrapped = np.angle(obj[support])
    weight = np.abs(obj[support])
    part = labels[support]
    for k in range(1, count + 1):
        sel = part == k
        offset = np.angle(np.sum(weight[sel] * np.exp(1j * (wrapped[sel] - psi[sel]))))
        psi[sel] += offset
    out[support] = psi
    return out


@dataclass
class Postprocessed:
    """What :func:`postprocess` returns.

    Attributes
    ----------
    object : ndarray, complex64
        The processed object.
    support : ndarray, bool
        The support (given or estimated), moved with the object.
    shift : tuple of float
        Translation applied by the centring (pixels per axis, ``x(r - shift)``).
    ramp : tuple of float
        Phase gradient removed (radians per pixel per axis).
    phase : float
        Global phase removed (radians).
    steps : list of str
        The steps applied, in order.
    """

    object: np.ndarray
    support: np.ndarray
    shift: tuple[float, ...] = ()
    ramp: tuple[float, ...] = ()
    phase: float = 0.0
    steps: list[str] = field(default_factory=list)


def postprocess(obj, *, support=None, centre: bool = True, subpixel: bool = False, remove_ramp: bool = False,
                zero_phase: bool = True, apodization: str | None = None, alpha: float = 0.5, sigma: float = 1.0,
                support_threshold: float = 0.1) -> Postprocessed:
    r"""Chain the post-processing steps into one canonical representative of the object.

    In this order: support (``support``, else
    :func:`support_from_magnitude` with ``support_threshold``), phase ramp
    (:func:`remove_phase_ramp`, when ``remove_ramp``), apodization
    (:func:`apodize` with window ``apodization``, ``alpha``, ``sigma``, when
    given), centring (:func:`centre_object`, ``subpixel``), global phase
    (:func:`set_global_phase`).  The ramp goes first so that the
    window acts on the re-centred spectrum; the global phase last so that it
    refers to the final support.

    The result does not depend on the trivial ambiguities it removes: for any
    integer translation ``s``, ramp ``k`` and phase ``c``,
    ``postprocess(roll(x, s) * exp(i (k.r + c)))`` equals ``postprocess(x)``
    (with ``centre``, ``remove_ramp`` and ``zero_phase``).

    Parameters
    ----------
    obj : ndarray, complex
        2D or 3D object on the pattern grid.
    support : ndarray of bool, optional
        Known support; estimated from the magnitude when None.
    centre, subpixel, remove_ramp, zero_phase : bool
        Which steps to run.
    apodization : {"tukey", "hann", "gaussian"}, optional
        Window for :func:`apodize`; None for none.
    alpha, sigma : float
        Window parameters (Tukey taper fraction; Gaussian blur in pixels).
    support_threshold : float
        Fraction of the maximum magnitude for the estimated support.

    Returns
    -------
    Postprocessed
    """
    obj = np.asarray(obj).astype(np.complex64)
    steps = []
    if support is None:
        support = support_from_magnitude(obj, threshold=support_threshold)
        steps.append(f"support: |x| > {support_threshold:g} max")
    else:
        support = _support(obj, support)
    ramp, shift, phase = (0.0,) * obj.ndim, (0.0,) * obj.ndim, 0.0
    if remove_ramp:
        obj, ramp = remove_phase_ramp(obj, support)
        steps.append("remove phase ramp")
    if apodization is not None:
        obj = apodize(obj, window=apodization, alpha=alpha, sigma=sigma)
        steps.append(f"apodize ({apodization})")
    if centre:
        obj, support, shift = centre_object(obj, support, subpixel=subpixel)
        steps.append("centre" + (" (sub-pixel)" if subpixel else ""))
    if zero_phase:
        obj, phase = set_global_phase(obj, support)
        steps.append("global phase")
    return Postprocessed(obj, support, tuple(shift), tuple(ramp), float(phase), steps)


def average_aligned(objects, *, tolerance: float = 0.25) -> tuple[np.ndarray, list[int]]:
    r"""Average reconstructions aligned onto the first, leaving out inconsistent ones.

    Each :math:`x_j` (:math:`j \ge 1`) is moved onto the reference :math:`x_0` over
    the far-field ambiguities -- global phase, sub-pixel translation and the twin
    :math:`\overline{x(-r)}` (:func:`doubledip.metrics.alignment`) -- and kept when
    :math:`\lVert x_0 - S(x_j)\rVert / \lVert x_0\rVert \le` ``tolerance``; the
    result is :math:`\frac{1}{|J|}\sum_{j \in J} S(x_j)`.  Averaging independent
    runs that agree cancels part of their noise and stagnation artefacts, the usual
    last step of CDI pipelines (Chen, Miao, Wang & Lee, Phys. Rev. B 76, 064113
    (2007); Favre-Nicolin et al., J. Appl. Cryst. 53, 1404 (2020)).

    Parameters
    ----------
    objects : sequence of ndarray
        Reconstructions on one grid, the reference (e.g. the best-ranked) first.
    tolerance : float
        Largest relative distance to the reference of a run that is averaged.

    Returns
    -------
    average : ndarray, complex64
    used : list of int
        Positions in ``objects`` of the averaged runs (always including 0).
    """
    from doubledip.metrics import alignment

    reference = np.asarray(objects[0]).astype(np.complex128)
    total, used = reference.copy(), [0]
    for j in range(1, len(objects)):
        aligned = alignment(reference, objects[j], subpixel=True)
        if aligned.error <= tolerance:
            total += aligned.aligned
            used.append(j)
    return (total / len(used)).astype(np.complex64), used
