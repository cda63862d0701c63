r"""Quality metrics: symmetry-adjusted error, Fourier R-factor, PRTF, PSNR and SSIM.

Phase retrieval recovers an object only up to the trivial ambiguities of its
forward model.  For the far field :math:`|F x|` is unchanged by a global phase
:math:`x \to e^{i\phi} x`, a translation :math:`x(r) \to x(r - s)` and the
conjugate flip (twin image) :math:`x(r) \to \overline{x(-r)}`; for the Fresnel
and Gaussian models only the global phase remains.  Every error against a
ground truth is therefore taken after the best such transformation
(:func:`align`, :func:`sa_error`).

All functions take NumPy arrays (1D, 2D or 3D; the dimensionality is the
array's ``ndim``) and compute in double precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from doubledip import fft

__all__ = [
    "Alignment",
    "alignment",
    "align",
    "sa_error",
    "symmetries_for",
    "conjugate_flip",
    "r_factor",
    "amplitude_error",
    "prtf",
    "resolution_from_prtf",
    "psnr",
    "ssim",
]

FAR_FIELD_SYMMETRIES = ("phase", "translation", "conjugate")
_KNOWN_SYMMETRIES = set(FAR_FIELD_SYMMETRIES)
_MODEL_SYMMETRIES = {"farfield": FAR_FIELD_SYMMETRIES, "fresnel": ("phase",), "gaussian": ("phase",)}


def symmetries_for(model) -> tuple[str, ...]:
    """The trivial ambiguities of a forward model, by name or instance.

    ``"farfield"`` -> ``("phase", "translation", "conjugate")``;
    ``"fresnel"`` and ``"gaussian"`` -> ``("phase",)``.  A model object answers
    with its ``symmetries`` attribute.

    Raises
    ------
    ValueError
        Unknown model name (the message lists the known ones).
    """
    if not isinstance(model, str):
        return tuple(model.symmetries)
    key = model.lower().replace("-", "").replace("_", "")
    if key in ("fraunhofer", "far"):
        key = "farfield"
    try:
        return _MODEL_SYMMETRIES[key]
    except KeyError:
        raise ValueError(f"unknown forward model '{model}'; known models are {', '.join(_MODEL_SYMMETRIES)}") from None


def conjugate_flip(x) -> np.ndarray:
    r"""The twin image :math:`\overline{x(-r)}`, with :math:`r` measured from the centre index ``N // 2``.

    Index ``i`` maps to ``(2 (N // 2) - i) mod N`` on every axis, so the
    centre stays put and ``conjugate_flip(conjugate_flip(x)) == x``.  Its far-field
    intensity equals that of ``x`` (:math:`F\bar{x}(-r) = \overline{F x}`).
    """
    x = np.asarray(x)
    axes = tuple(range(x.ndim))
    origin_first = fft.uncentre(x, x.ndim)
    flipped = np.roll(np.flip(origin_first, axis=axes), 1, axis=axes)
    return fft.centre(np.conj(flipped), x.ndim)


def _signed_frequencies(shape) -> list[np.ndarray]:
    return fft.frequency_grid(tuple(shape), centred=False)


def _shift(spectrum: np.ndarray, shift) -> np.ndarray:
    """``ifft`` of ``spectrum`` translated by ``shift`` pixels: ``y(r) = x(r - s)`` (circular)."""
    ramp = np.zeros(spectrum.shape)
    for k, s, n in zip(_signed_frequencies(spectrum.shape), shift, spectrum.shape):
        ramp = ramp + k * (s / n)
    return fft.ifft(spectrum * np.exp(-2j * np.pi * ramp), spectrum.ndim)


def _local_correlation(cross_power: np.ndarray, centre, half_width: float, step: float) -> tuple[np.ndarray, list]:
    r"""Cross-correlation :math:`c(s) = \sum_k C(k) e^{2\pi i k\cdot s/N}` on a fine grid around ``centre``.

    A matrix-multiply DFT evaluated only on the local grid, axis by axis
    (Guizar-Sicairos, Thurman & Fienup, Opt. Lett. 33, 156 (2008)).
    """
    out = cross_power
    grids = []
    count = int(round(half_width / step))
    for axis, (k, c, n) in enumerate(zip(_signed_frequencies(cross_power.shape), centre, cross_power.shape)):
        s = c + step * np.arange(-count, count + 1)
        grids.append(s)
        kernel = np.exp(2j * np.pi * np.outer(k.ravel(), s) / n)  # (n, len(s))
        out = np.moveaxis(np.tensordot(out, kernel, axes=([axis], [0])), -1, axis)
    return out, grids


def _subpixel_peak(cross_power: np.ndarray, peak) -> np.ndarray:
    """Refine an integer correlation peak to about 1/100 pixel in two upsampled-DFT stages."""
    position = np.asarray(peak, dtype=np.float64)
    for half_width, step in ((1.0, 0.1), (0.1, 0.01)):
        values, grids = _local_correlation(cross_power, position, half_width, step)
        best = np.unravel_index(np.argmax(np.abs(values)), values.shape)
        position = np.array([g[i] for g, i in zip(grids, best)])
    return position


@dataclass
class Alignment:
    """The outcome of :func:`alignment`.

    Attributes
    ----------
    aligned : ndarray
        ``factor * S(estimate)``, the estimate moved onto the truth.
    error : float
        :math:`\\lVert x - c\\,S(\\hat x)\\rVert / \\lVert x\\rVert`.
    shift : tuple of float
        Translation applied (pixels, per axis), ``S(\\hat x)(r) = \\hat x(r - shift)``
        (after the flip when ``conjugate``).
    conjugate : bool
        Whether the twin image was used.
    factor : complex
        The global factor ``c`` (unit modulus unless ``scale=True``).
    """

    aligned: np.ndarray
    error: float
    shift: tuple[float, ...]
    conjugate: bool
    factor: complex


def alignment(truth, estimate, *, symmetries=FAR_FIELD_SYMMETRIES, scale: bool = False,
              subpixel: bool = False) -> Alignment:
    r"""Best alignment of ``estimate`` onto ``truth`` over the given symmetries.

    Minimises :math:`\lVert x - c\, S(\hat x)\rVert` where :math:`S` runs over

    * the estimate and, when ``"conjugate"`` is allowed, its twin
      :math:`\overline{\hat x(-r)}` (:func:`conjugate_flip`);
    * when ``"translation"`` is allowed, circular translations by the argmax
      of :math:`|x \star \hat x|`, the FFT cross-correlation
      :math:`\mathcal{F}^{-1}[X \bar{\hat X}]`, optionally refined to about
      0.01 pixel by an upsampled DFT around the peak (Guizar-Sicairos,
      Thurman & Fienup, Opt. Lett. 33, 156 (2008)) and applied as a Fourier
      phase ramp;

    and :math:`c` is the optimal global phase
    :math:`\langle \hat x_S, x\rangle / |\langle \hat x_S, x\rangle|` when
    ``"phase"`` is allowed (1 otherwise), or with ``scale=True`` the optimal
    complex scale :math:`\langle \hat x_S, x\rangle / \lVert \hat x_S\rVert^2`.
    Maximising :math:`|x \star \hat x|` minimises the error over integer
    shifts exactly, because :math:`\lVert x - c\hat x_S\rVert^2 =
    \lVert x\rVert^2 + \lVert\hat x\rVert^2 - 2|\langle\hat x_S, x\rangle|`.
    The candidate (direct or twin) with the smaller error wins.

    Parameters
    ----------
    truth, estimate : ndarray
        Same shape, real or complex, any ``ndim``.
    symmetries : iterable of str
        Subset of ``("phase", "translation", "conjugate")``; see :func:`symmetries_for`.
    scale : bool
        Fit a complex scale instead of a unit phase.
    subpixel : bool
        Refine the translation below one pixel.

    Returns
    -------
    Alignment
    """
    x = np.asarray(truth).astype(np.complex128)
    xh = np.asarray(estimate).astype(np.complex128)
    if x.shape != xh.shape:
        raise ValueError(f"truth shape {x.shape} and estimate shape {xh.shape} differ")
    symmetries = tuple(symmetries)
    unknown = set(symmetries) - _KNOWN_SYMMETRIES
    if unknown:
        raise ValueError(f"unknown symmetries {sorted(unknown)}; known are {', '.join(FAR_FIELD_SYMMETRIES)}")
    norm = np.linalg.norm(x)
    if not norm > 0:
        raise ValueError("the truth is zero everywhere; a relative error is undefined")
    ndim = x.ndim
    out_dtype = np.result_type(np.asarray(estimate).dtype, np.complex64)

    candidates = [(False, xh)]
    if "conjugate" in symmetries:
        candidates.append((True, conjugate_flip(xh)))
    X = fft.fft(x, ndim)
    best = None
    for conjugate, cand in candidates:
        spectrum = fft.fft(cand, ndim)
        shift = np.zeros(ndim)
        if "translation" in symmetries:
            cross_power = X * np.conj(spectrum)
            corr = np.abs(fft.ifft(cross_power, ndim))
            peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), dtype=np.float64)
            n = np.array(corr.shape)
            shift = np.where(peak > n // 2, peak - n, peak)
            if subpixel:
                shift = _subpixel_peak(cross_power, shift)
        moved = _shift(spectrum, shift) if np.any(shift) else cand
        inner = np.vdot(moved, x)
        if scale:
            energy = np.vdot(moved, moved).real
            factor = inner / energy if energy > 0 else 0j
        elif "phase" in symmetries:
            factor = inner / abs(inner) if abs(inner) > 0 else 1 + 0j
        else:
            factor = 1 + 0j
        aligned = factor * moved
        error = float(np.linalg.norm(x - aligned) / norm)
        if best is None or error < best.error:
            best = Alignment(aligned, error, tuple(float(s) for s in shift), conjugate, complex(factor))
    best.aligned = best.aligned.astype(out_dtype)
    return best


def align(truth, estimate, *, symmetries=FAR_FIELD_SYMMETRIES, scale: bool = False,
          subpixel: bool = False) -> np.ndarray:
    """``estimate`` moved onto ``truth`` over ``symmetries`` (same shape); see :func:`alignment`."""
    return alignment(truth, estimate, symmetries=symmetries, scale=scale, subpixel=subpixel).aligned


def sa_error(truth, estimate, *, symmetries=FAR_FIELD_SYMMETRIES, scale: bool = False,
             subpixel: bool = False) -> float:
    r"""Symmetry-adjusted relative error :math:`\min_{c,S} \lVert x - c\,S(\hat x)\rVert / \lVert x\rVert`.

    ``c`` is a unit global phase (or, with ``scale=True``, any complex scale) and
    ``S`` ranges over the translations and the conjugate flip allowed by
    ``symmetries``; see :func:`alignment` for the algorithm.  0 means identical
    up to the symmetries; an unrelated object of the same norm scores about
    :math:`\sqrt 2` (about 1 with ``scale=True``).  This is the error of
    Fienup, Appl. Opt. 36, 8352 (1997) and Guizar-Sicairos et al., Opt. Lett. 33,
    156 (2008), extended to the twin image.
    """
    return alignment(truth, estimate, symmetries=symmetries, scale=scale, subpixel=subpixel).error


def _valid(mask, shape) -> np.ndarray:
    if mask is None:
        return np.ones(shape, bool)
    mask = np.asarray(mask)
    if mask.shape != tuple(shape):
        raise ValueError(f"mask shape {mask.shape} differs from the data shape {tuple(shape)}")
    return mask == 0


def _fit_residual(intensity, model_amplitude, mask, fit_scale: bool):
    measured = np.sqrt(np.clip(np.asarray(intensity, dtype=np.float64), 0, None))
    model = np.abs(np.asarray(model_amplitude, dtype=np.float64))
    if measured.shape != model.shape:
        raise ValueError(f"intensity shape {measured.shape} and model shape {model.shape} differ")
    valid = _valid(mask, measured.shape)
    measured, model = measured[valid], model[valid]
    s = 1.0
    if fit_scale:
        denom = np.dot(model, model)
        s = np.dot(measured, model) / denom if denom > 0 else 0.0
    return measured, measured - s * model


def r_factor(intensity, model_amplitude, mask=None, *, fit_scale: bool = True) -> float:
    r"""Crystallographic R-factor of Fourier amplitudes on the measured pixels.

    .. math:: R = \frac{\sum_{k \in M} \left|\sqrt{I_k} - s\, a_k\right|}{\sum_{k\in M} \sqrt{I_k}},
              \qquad s = \frac{\sum_{k\in M} \sqrt{I_k}\, a_k}{\sum_{k \in M} a_k^2}

    with :math:`M` the unmasked pixels, :math:`a = |A x|` the model amplitude
    and :math:`s` the least-squares scale (``fit_scale=False``: :math:`s = 1`).
    For the exact object and noiseless data :math:`R = 0`; for Poisson data
    the truth scores about the noise level.  (Miao et al., Phys. Rev. B 67,
    174104 (2003); Marchesini et al., Phys. Rev. B 68, 140101 (2003).)

    Parameters
    ----------
    intensity : ndarray
        Measured intensity (negative values count as 0).
    model_amplitude : ndarray
        Model amplitude (or complex field; its modulus is used), same shape.
    mask : ndarray, optional
        Nonzero = unmeasured pixel, excluded.
    fit_scale : bool
        Fit the scale ``s``.
    """
    measured, residual = _fit_residual(intensity, model_amplitude, mask, fit_scale)
    total = measured.sum()
    return float(np.abs(residual).sum() / total) if total > 0 else float("nan")


def amplitude_error(intensity, model_amplitude, mask=None, *, fit_scale: bool = True) -> float:
    r"""Relative L2 amplitude error on the measured pixels, the L2 twin of :func:`r_factor`.

    .. math:: E = \frac{\lVert \sqrt{I} - s\, a\rVert_M}{\lVert \sqrt{I}\rVert_M}

    with the same least-squares scale :math:`s` (Fienup, Appl. Opt. 21, 2758
    (1982), the Fourier-domain error of the error-reduction algorithm).
    """
    measured, residual = _fit_residual(intensity, model_amplitude, mask, fit_scale)
    total = np.linalg.norm(measured)
    return float(np.linalg.norm(residual) / total) if total > 0 else float("nan")


def _shells(shape, bins):
    """Shell index of every pixel and the shell edges (|q| in pixels of the centred grid)."""
    q = np.sqrt(sum(g.astype(np.float64) ** 2 for g in fft.frequency_grid(tuple(shape))))
    if bins is None:
        edges = np.arange(-0.5, q.max() + 1.0)
    elif np.isscalar(bins):
        edges = np.linspace(0.0, q.max() + 1e-9, int(bins) + 1)
    else:
        edges = np.asarray(bins, dtype=np.float64)
    return q, np.digitize(q, edges) - 1, len(edges) - 1


def prtf(objects, intensity=None, mask=None, *, ndim: int, bins=None) -> tuple[np.ndarray, np.ndarray]:
    r"""Phase retrieval transfer function of several reconstructions of one pattern.

    The reconstructions are aligned on the first one (global phase,
    translation, twin: :func:`align`), transformed,
    :math:`F_k = \mathcal{F} x_k`, and compared shell by shell of
    :math:`|q|`:

    .. math:: \mathrm{PRTF}(q) = \frac{\sum_{|k| \in q} |\langle F_j(k)\rangle_j|}
                                       {\sum_{|k|\in q} s\sqrt{I(k)}}

    when the measured ``intensity`` is given (``s`` the least-squares scale of
    :math:`\langle |F_j|\rangle_j` to :math:`\sqrt I`), else with
    :math:`\sum \langle |F_j|\rangle_j` in the denominator.  Phases that agree
    between runs give 1; random phases give about :math:`1/\sqrt{K}`.  Masked
    pixels are left out.  Ratios of shell sums rather than shell means of
    ratios keep weak pixels from dominating.  (Chapman et al., JOSA A 23,
    1179 (2006); Shapiro et al., PNAS 102, 15343 (2005).)

    Parameters
    ----------
    objects : sequence of ndarray or ndarray
        ``K`` reconstructions on the pattern grid (leading axis ``K``).
    intensity : ndarray, optional
        The measured pattern (detector convention).
    mask : ndarray, optional
        Nonzero = unmeasured.
    ndim : int
        Dimensionality of one object (2 or 3).
    bins : int or array, optional
        Number of equal shells or their edges; default unit-width shells
        centred on integer :math:`|q|`.

    Returns
    -------
    q : ndarray
        Mean :math:`|q|` (pixels from the centre) of each non-empty shell.
    values : ndarray
        The PRTF per shell.
    """
    stack = np.asarray(objects).astype(np.complex128)
    if stack.ndim != ndim + 1:
        stack = stack.reshape((-1,) + stack.shape[-ndim:])
    reference = stack[0]
    aligned = np.stack([reference] + [align(reference, x) for x in stack[1:]])
    spectra = fft.cfft(aligned, ndim)
    coherent = np.abs(spectra.mean(axis=0))
    incoherent = np.abs(spectra).mean(axis=0)
    shape = coherent.shape
    valid = _valid(mask, shape)
    if intensity is not None:
        measured = np.sqrt(np.clip(np.asarray(intensity, dtype=np.float64), 0, None))
        if measured.shape != shape:
            raise ValueError(f"intensity shape {measured.shape} differs from the objects' {shape}")
        denom_model = incoherent[valid]
        s = np.dot(measured[valid], denom_model) / max(np.dot(denom_model, denom_model), 1e-300)
        reference_amplitude = measured / s if s > 0 else measured
    else:
        reference_amplitude = incoherent
    q, shell, count = _shells(shape, bins)
    keep = valid & (shell >= 0) & (shell < count)
    numerator = np.bincount(shell[keep], coherent[keep], count)
    denominator = np.bincount(shell[keep], reference_amplitude[keep], count)
    q_sum = np.bincount(shell[keep], q[keep], count)
    pixels = np.bincount(shell[keep], minlength=count)
    use = (pixels > 0) & (denominator > 0)
    return q_sum[use] / pixels[use], numerator[use] / denominator[use]


def resolution_from_prtf(q, prtf_values, N: int, threshold: float = float(np.exp(-1))) -> tuple[float, float]:
    r"""Where the PRTF first drops below ``threshold`` (default :math:`1/e`) and the resolution there.

    The crossing is linearly interpolated between the last shell above and the
    first below.  The half-period resolution in pixels of the object grid is
    :math:`N / (2 q)` for a pattern of ``N`` pixels (a frequency of ``q``
    pixels from the centre is a period of ``N / q`` pixels).  A PRTF that
    never drops gives the largest ``q`` (the resolution is then limited by
    the detector, not the phasing).  (Chapman et al., JOSA A 23, 1179 (2006).)

    Returns
    -------
    q_cut : float
        Crossing frequency in pixels from the centre.
    half_period : float
        ``N / (2 q_cut)`` in pixels (``inf`` if ``q_cut`` is 0).
    """
    q = np.asarray(q, dtype=np.float64)
    values = np.asarray(prtf_values, dtype=np.float64)
    below = np.nonzero(values < threshold)[0]
    if len(below) == 0:
        q_cut = float(q[-1])
    elif below[0] == 0:
        q_cut = float(q[0])
    else:
        i = below[0]
        t = (values[i - 1] - threshold) / (values[i - 1] - values[i])
        q_cut = float(q[i - 1] + t * (q[i] - q[i - 1]))
    return q_cut, (float(N) / (2 * q_cut) if q_cut > 0 else float("inf"))


def psnr(truth, estimate, *, data_range: float | None = None) -> float:
    r"""Peak signal-to-noise ratio in dB, :math:`10 \log_{10}(L^2 / \mathrm{MSE})`.

    :math:`\mathrm{MSE} = \langle |x - \hat x|^2\rangle` (complex arrays allowed);
    :math:`L` is ``data_range``, by default ``max - min`` of a real truth or
    ``max |x|`` of a complex one.  Identical arrays give ``inf``.  Align
    phase-retrieval estimates first (:func:`align`).
    """
    x = np.asarray(truth)
    xh = np.asarray(estimate)
    if x.shape != xh.shape:
        raise ValueError(f"truth shape {x.shape} and estimate shape {xh.shape} differ")
    if data_range is None:
        data_range = float(np.abs(x).max()) if np.iscomplexobj(x) else float(x.max() - x.min())
    mse = float(np.mean(np.abs(x.astype(np.complex128) - xh) ** 2))
    if mse == 0:
        return float("inf")
    return float(10 * np.log10(data_range**2 / mse))


def ssim(truth, estimate, *, data_range: float | None = None, sigma: float = 1.5) -> float:
    r"""Mean structural similarity of two real images (or volumes), Gaussian window.

    .. math:: \mathrm{SSIM} = \left\langle \frac{(2\mu_x\mu_y + C_1)(2\sigma_{xy} + C_2)}
              {(\mu_x^2 + \mu_y^2 + C_1)(\sigma_x^2 + \sigma_y^2 + C_2)} \right\rangle

    with local means and (co)variances from a Gaussian window of width
    ``sigma`` (1.5 pixels), :math:`C_1 = (0.01 L)^2`, :math:`C_2 = (0.03 L)^2`,
    :math:`L` the ``data_range`` (default the truth's ``max - min``), sample
    covariances and edge-reflected borders, averaged over the whole image.
    (Wang, Bovik, Sheikh & Simoncelli, IEEE TIP 13, 600 (2004).)  For complex
    reconstructions pass magnitudes or real parts of aligned arrays.
    """
    x = np.asarray(truth, dtype=np.float64)
    y = np.asarray(estimate, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"truth shape {x.shape} and estimate shape {y.shape} differ")
    if data_range is None:
        data_range = float(x.max() - x.min()) or 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(a):
        return ndimage.gaussian_filter(a, sigma, mode="reflect", truncate=3.5)

    n = (2 * int(3.5 * sigma + 0.5) + 1) ** x.ndim
    correction = n / (n - 1)
    mx, my = blur(x), blur(y)
    vx = (blur(x * x) - mx * mx) * correction
    vy = (blur(y * y) - my * my) * correction
    vxy = (blur(x * y) - mx * my) * correction
    index = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(index.mean())
