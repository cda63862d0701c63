"""One entry point from a raw detector pattern to a measurement ready for a solver: :func:`prepare`."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from doubledip.config import make_options, options_dict
from doubledip.errors import ConfigError, DataError
from doubledip.io import Measurement
from doubledip.preprocess import grid, masks
from doubledip.preprocess.centre import centre_of_mass, friedel_centre

__all__ = ["PrepareOptions", "prepare", "prepare_options", "prepare_figure", "CENTRE_METHODS"]

log = logging.getLogger(__name__)

CENTRE_METHODS = ("auto", "com", "friedel")
BIN_RULES = ("any", "majority")


@dataclass(frozen=True)
class PrepareOptions:
    """How :func:`prepare` turns a detector pattern into a measurement.

    The defaults change nothing: every step is opt-in.

    Attributes
    ----------
    center : str, tuple of float or None
        Where the zero frequency is: ``"com"`` (centre of mass,
        :func:`~doubledip.preprocess.centre_of_mass`), ``"friedel"`` (best
        centro-symmetry, :func:`~doubledip.preprocess.friedel_centre`),
        ``"auto"`` (Friedel when its score is at least ``friedel_min_score``,
        else the centre of mass: strained crystals in Bragg CDI do not give
        centro-symmetric patterns), an explicit position ``(y, x)`` /
        ``(z, y, x)`` in input pixels, or None (the pattern is taken as centred
        at ``N // 2``: no shift).
    size : int, tuple of int or None
        Output shape after binning (one int: the same on every axis); None
        keeps ``N // bin``.  Cropping keeps the oversampling and lowers the
        resolution; padded pixels are masked.
    bin : int or "auto"
        Integer bin factor (sum of counts), or ``"auto"``: the largest factor
        that keeps the estimated oversampling at least ``oversampling``
        (:func:`~doubledip.preprocess.auto_bin`).
    bin_mask : str
        ``"any"``: a binned pixel is masked when any of its pixels is;
        ``"majority"``: when more than half are (the rest are scaled up, see
        :func:`~doubledip.preprocess.bin_pattern`).
    oversampling : float
        Target linear oversampling for ``bin="auto"``.
    mask : str or None
        Mask file (nonzero = unmeasured), added to the pattern's own mask.
    mask_zeros : bool
        Treat pixels that are exactly 0 as unmeasured.
    mask_negative : bool
        Treat negative pixels as unmeasured (otherwise they are an error unless
        ``threshold`` lifts them to 0).
    mask_saturated : float or None
        Treat pixels at or above this count as unmeasured.
    mask_gaps : bool
        Mask whole detector lines (planes) with no counts
        (:func:`~doubledip.preprocess.gap_mask`).
    mask_dilate : int
        Grow the mask by this many pixels (after every other mask source).
    threshold : float or None
        Background level: measured values below it become measured zeros.
        Applied after the masks are found and before centring (the centre of
        mass then ignores the background).
    friedel_min_score : float
        Centro-symmetry score from which ``center="auto"`` trusts the Friedel centre.
    """

    center: str | tuple | None = None
    size: int | tuple | None = None
    bin: int | str = 1
    bin_mask: str = "any"
    oversampling: float = 2.5
    mask: str | None = None
    mask_zeros: bool = False
    mask_negative: bool = False
    mask_saturated: float | None = None
    mask_gaps: bool = False
    mask_dilate: int = 0
    threshold: float | None = None
    friedel_min_score: float = 0.9

    def __post_init__(self):
        center = self.center
        if isinstance(center, str):
            if center.lower() not in CENTRE_METHODS:
                raise ValueError(f"center '{center}' is not one of {', '.join(CENTRE_METHODS)} or a position y,x")
            object.__setattr__(self, "center", center.lower())
        elif center is not None:
            if not all(isinstance(c, (int, float)) and np.isfinite(c) for c in center) or len(center) not in (2, 3):
                raise ValueError(f"center {center!r} must be 2 or 3 finite numbers (y, x) or (z, y, x)")
            object.__setattr__(self, "center", tuple(float(c) for c in center))
        if self.size is not None:
            sizes = (self.size,) if isinstance(self.size, int) else tuple(self.size)
            if not sizes or not all(isinstance(s, int) and s >= 4 for s in sizes):
                raise ValueError(f"size {self.size!r} must be an integer >= 4 (or one per axis)")
            object.__setattr__(self, "size", self.size if isinstance(self.size, int) else sizes)
        if isinstance(self.bin, str):
            if self.bin.lower() != "auto":
                raise ValueError(f"bin '{self.bin}' must be a positive integer or 'auto'")
            object.__setattr__(self, "bin", "auto")
        elif self.bin < 1:
            raise ValueError(f"bin {self.bin} must be a positive integer or 'auto'")
        if self.bin_mask not in BIN_RULES:
            raise ValueError(f"bin_mask '{self.bin_mask}' must be one of {', '.join(BIN_RULES)}")
        if not self.oversampling >= 1:
            raise ValueError(f"oversampling {self.oversampling} must be >= 1 (2 is the minimum for phase retrieval)")
        if self.mask_saturated is not None and not self.mask_saturated > 0:
            raise ValueError(f"mask_saturated {self.mask_saturated} must be a positive count")
        if self.mask_dilate < 0:
            raise ValueError(f"mask_dilate {self.mask_dilate} must be >= 0 pixels")
        if self.threshold is not None and not np.isfinite(self.threshold):
            raise ValueError(f"threshold {self.threshold} must be a finite number")
        if not 0 <= self.friedel_min_score <= 1:
            raise ValueError(f"friedel_min_score {self.friedel_min_score} must lie in [0, 1]")


def prepare_options(mapping: dict[str, Any] | None = None, *, source: str = "prepare options",
                    **overrides) -> PrepareOptions:
    """:class:`PrepareOptions` from a mapping (a TOML ``[prepare]`` table) and keyword overrides.

    Unknown or invalid options raise :class:`~doubledip.errors.ConfigError`.
    """
    return make_options(PrepareOptions, mapping, source=source, **overrides)


def _count(array) -> int:
    return int(np.count_nonzero(array))


def _collect_masks(measurement: Measurement, options: PrepareOptions) -> tuple[np.ndarray, dict[str, int]]:
    """The combined mask on the input grid and how many pixels each source masks (alone)."""
    intensity = measurement.intensity
    mask = measurement.mask != 0
    counts = {"input": _count(mask)}
    sources = []
    if options.mask is not None:
        from doubledip.io import read_mask

        sources.append(("file", read_mask(options.mask, intensity.shape, source=measurement.source or None) != 0))
    if options.mask_zeros:
        sources.append(("zeros", masks.zero_mask(intensity) & ~mask))
    if options.mask_negative:
        sources.append(("negative", masks.negative_mask(intensity)))
    if options.mask_saturated is not None:
        sources.append(("saturated", masks.saturated_mask(intensity, options.mask_saturated)))
    if options.mask_gaps:
        sources.append(("gaps", masks.gap_mask(intensity, mask)))
    for name, extra in sources:
        counts[name] = _count(extra & ~mask)
        mask = mask | extra
    if options.mask_dilate:
        grown = masks.dilate_mask(mask, options.mask_dilate)
        counts["dilation"] = _count(grown & ~mask)
        mask = grown
    counts["total"] = _count(mask)
    return mask, counts


def _find_centre(intensity, mask, options: PrepareOptions, source: str) -> dict[str, Any]:
    ndim = intensity.ndim
    if options.center is None:
        return {"method": "none", "centre": [float(n // 2) for n in intensity.shape]}
    if isinstance(options.center, tuple):
        if len(options.center) != ndim:
            raise ConfigError(f"center {options.center} has {len(options.center)} values; the pattern has {ndim} axes")
        return {"method": "given", "centre": list(options.center)}
    info: dict[str, Any] = {}
    try:
        if options.center in ("auto", "com"):
            info["com"] = list(centre_of_mass(intensity, mask))
        if options.center in ("auto", "friedel"):
            centre, score = friedel_centre(intensity, mask, return_score=True)
            info["friedel"], info["friedel_score"] = list(centre), float(score)
    except ValueError as err:
        raise DataError(source or "pattern", f"cannot find the centre ({err})",
                        "give the centre with --center Y,X or check the mask and threshold") from None
    if options.center == "auto":
        use = "friedel" if info["friedel_score"] >= options.friedel_min_score else "com"
    else:
        use = options.center
    info.update(method=use if options.center != "auto" else f"auto ({use})", centre=info[use])
    return info


def prepare(measurement: Measurement, options: PrepareOptions | None = None) -> tuple[Measurement, dict[str, Any]]:
    r"""Mask, threshold, centre, crop/pad and bin a detector pattern.

    Steps, in this order:

    1. masks on the input grid: the pattern's own, ``mask`` (file),
       ``mask_zeros``, ``mask_negative``, ``mask_saturated``, ``mask_gaps``
       (all found on the raw values), then ``mask_dilate``;
    2. ``threshold``: measured values below it become 0 (measured zeros);
    3. the centre :math:`c` (``center``), found on the thresholded, masked
       full-resolution pattern;
    4. with the bin factor :math:`K` (``bin``, or ``"auto"`` from the
       oversampling estimate :func:`~doubledip.preprocess.estimate_oversampling`)
       and output shape :math:`n` (``size``, default ``N // K``), one window of
       :math:`nK` input pixels per axis is cut so that :math:`c` lands in the
       middle of output pixel :math:`n // 2`
       (:func:`~doubledip.preprocess.window_start`): a whole-pixel shift and a
       crop or pad at once, pixels from outside the detector masked;
    5. the window is binned (:func:`~doubledip.preprocess.bin_pattern`).

    The ground-truth object of a simulation is kept only when the grid is
    unchanged (no shift, crop or binning); otherwise it no longer matches the
    pattern and is dropped (``meta["prepare"]["object"]`` says so).

    Parameters
    ----------
    measurement : doubledip.io.Measurement
        The raw pattern (any size, 2D or 3D).
    options : PrepareOptions, optional
        What to do; the defaults change nothing.

    Returns
    -------
    (Measurement, dict)
        The prepared measurement (``meta["prepare"]`` holds the report) and the
        report: ``input_shape``, ``output_shape``, ``centre`` (found, input
        pixels) with ``centre_method`` and the candidates (``com``,
        ``friedel``, ``friedel_score``), ``window_start`` and ``shift`` (its
        negative: before binning ``out[i] = in[i - shift]``), ``bin``, ``residual_offset`` (where the
        centre lies in output pixels relative to ``N // 2``), ``masked`` (pixels
        masked by each source on the input grid, and ``output`` / ``padding``
        on the output grid), ``thresholded`` (pixels set to 0),
        ``total_counts_in`` / ``total_counts_out`` (measured pixels),
        ``oversampling`` (estimated on the output) and ``options``.

    Raises
    ------
    DataError
        Negative values left at measured pixels, no centre found, nothing
        measured in the output window.
    ConfigError
        A centre with the wrong number of values, an output larger than the
        input times bin allows nothing measured.
    """
    options = options or PrepareOptions()
    source = measurement.source or "pattern"
    ndim = measurement.ndim
    intensity = np.asarray(measurement.intensity, np.float32)
    mask, counts = _collect_masks(measurement, options)
    intensity = np.where(mask, 0, intensity).astype(np.float32)
    thresholded = 0
    if options.threshold is not None:
        intensity, thresholded = grid.apply_threshold(intensity, options.threshold)
    negative = _count((intensity < 0) & ~mask)
    if negative:
        raise DataError(source, f"{negative} measured pixel(s) are negative",
                        "mask them (--mask-negative) or lift the background (--threshold 0)")
    if not np.any(intensity[~mask] > 0):
        raise DataError(source, "no counts left at measured pixels",
                        "check the mask options (is --mask-zeros or --threshold too strong?)")

    centre_info = _find_centre(intensity, mask, options, source)
    centre = centre_info["centre"]

    oversampling_in = None
    factor = options.bin
    if factor == "auto":
        oversampling_in = grid.estimate_oversampling(intensity, mask)
        factor = grid.auto_bin(oversampling_in["oversampling"], target=options.oversampling)
    if options.size is None:
        shape = tuple(n // factor for n in intensity.shape)
    else:
        shape = (options.size,) * ndim if isinstance(options.size, int) else tuple(options.size)
        if len(shape) != ndim:
            raise ConfigError(f"size {options.size} has {len(shape)} values; the pattern has {ndim} axes")
    if min(shape) < 4:
        raise ConfigError(f"bin {factor} leaves a pattern of shape {shape}; use a smaller bin factor")
    start = grid.window_start(centre, shape, factor)
    window = tuple(n * factor for n in shape)
    cut, cut_mask = grid.extract(intensity, mask, start, window)
    out, out_mask = grid.bin_pattern(cut, cut_mask, factor, rule=options.bin_mask)
    if not np.any(out[out_mask == 0] > 0):
        raise DataError(source, f"no measured counts in the output window (start {start}, shape {window})",
                        "check --center and --size")

    inside = np.ones(intensity.shape, bool)
    for axis, (s, w) in enumerate(zip(start, window)):
        index = np.arange(intensity.shape[axis])
        view = [1] * ndim
        view[axis] = -1
        inside &= ((index >= s) & (index < s + w)).reshape(view)
    off_detector = grid.extract(np.zeros(intensity.shape, np.uint8), np.zeros(intensity.shape, bool), start,
                                window)[1]
    counts["padding"] = _count(grid.bin_pattern(np.zeros(window, np.float32), off_detector, factor,
                                                rule=options.bin_mask)[1])
    counts["output"] = _count(out_mask)
    counts["output_fraction"] = float(counts["output"] / out_mask.size)

    same_grid = factor == 1 and tuple(start) == (0,) * ndim and shape == intensity.shape
    residual = [(float(c) - s - (factor - 1) / 2) / factor - n // 2 for c, s, n in zip(centre, start, shape)]
    try:
        oversampling_out = grid.estimate_oversampling(out, out_mask)["oversampling"]
    except ValueError:
        oversampling_out = None
    report: dict[str, Any] = {
        "input_shape": list(intensity.shape),
        "output_shape": list(shape),
        "centre": [float(c) for c in centre],
        "centre_method": centre_info["method"],
        "com": centre_info.get("com"),
        "friedel": centre_info.get("friedel"),
        "friedel_score": centre_info.get("friedel_score"),
        "window_start": list(start),
        "shift": [-int(s) for s in start],
        "bin": int(factor),
        "bin_mask": options.bin_mask,
        "residual_offset": residual,
        "masked": counts,
        "thresholded": int(thresholded),
        "dropped_counts": float(intensity[~inside & ~mask].sum(dtype=np.float64)),
        "total_counts_in": float(intensity[~mask].sum(dtype=np.float64)),
        "total_counts_out": float(out[out_mask == 0].sum(dtype=np.float64)),
        "oversampling_in": None if oversampling_in is None else oversampling_in["oversampling"],
        "oversampling": oversampling_out,
        "object": "kept" if same_grid else ("dropped: the pattern grid changed" if measurement.object is not None
                                            else None),
        "options": options_dict(options),
    }
    meta = dict(measurement.meta or {})
    meta["prepare"] = report
    obj = measurement.object if same_grid else None
    log.info("prepared %s: centre %s (%s), bin %d, shape %s", source, report["centre"], report["centre_method"],
             factor, shape)
    return Measurement(out, out_mask, obj, measurement.source, meta), report


def prepare_figure(before: Measurement, after: Measurement, report: dict[str, Any]):
    """Input and prepared pattern side by side (log scale, mask in blue, centre marked).

    3D patterns show the slice through the centre along the first axis.
    Returns a :class:`matplotlib.figure.Figure`.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(12, 6), layout="constrained")
    centre = report["centre"]
    panels = [
        (before, centre, f"input {tuple(report['input_shape'])}: centre "
                         f"({', '.join(f'{c:.2f}' for c in centre)}), {report['centre_method']}"),
        (after, [n // 2 for n in report["output_shape"]],
         f"prepared {tuple(report['output_shape'])}, bin {report['bin']}: "
         f"{100 * report['masked']['output_fraction']:.1f}% masked"),
    ]
    for k, (m, mark, title) in enumerate(panels):
        intensity, mask = m.intensity, m.mask != 0
        if intensity.ndim == 3:
            z = int(np.clip(round(mark[0]), 0, intensity.shape[0] - 1))
            intensity, mask, mark = intensity[z], mask[z], mark[1:]
            title += f", slice z={z}"
        ax = fig.add_subplot(1, 2, k + 1)
        ax.imshow(np.log10(np.maximum(intensity, 0) + 1), cmap="magma", origin="upper")
        if mask.any():
            overlay = np.zeros(mask.shape + (4,))
            overlay[mask] = (0.2, 0.6, 1.0, 0.7)
            ax.imshow(overlay, origin="upper")
        ax.plot([mark[1]], [mark[0]], marker="+", color="cyan", markersize=14, mew=1.5)
        if k == 0:
            start, factor = report["window_start"][-2:], report["bin"]
            size = [n * factor for n in report["output_shape"][-2:]]
            ax.add_patch(Rectangle((start[1] - 0.5, start[0] - 0.5), size[1], size[0], fill=False,
                                   edgecolor="lime", linewidth=1.0))
        ax.set_xlim(-0.5, intensity.shape[1] - 0.5)
        ax.set_ylim(intensity.shape[0] - 0.5, -0.5)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("log10(I + 1); masked pixels in blue; + = zero frequency; green = window kept")
    return fig

