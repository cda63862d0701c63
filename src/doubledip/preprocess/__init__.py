"""Preprocessing of detector patterns: centre, masks, crop/pad, binning, threshold.

.. code-block:: python

    from doubledip.io import read_pattern
    from doubledip.preprocess import PrepareOptions, prepare

    raw = read_pattern("planar_cdi_1024.tif")
    prepared, report = prepare(raw, PrepareOptions(center="auto", bin=2))
    report["centre"]        # [511.12, 511.36]: the zero frequency found, in input pixels

:func:`prepare` runs every step in a fixed order and records what it did in
``Measurement.meta["prepare"]``; the steps are also public functions.
"""

from doubledip.preprocess.centre import centre_of_mass, friedel_centre, friedel_correlation
from doubledip.preprocess.grid import (
    apply_threshold,
    auto_bin,
    bin_pattern,
    crop_or_pad,
    estimate_oversampling,
    extract,
    shift_to_centre,
    window_start,
)
from doubledip.preprocess.masks import ball, dilate_mask, gap_mask, negative_mask, saturated_mask, zero_mask
from doubledip.preprocess.pipeline import CENTRE_METHODS, PrepareOptions, prepare, prepare_figure, prepare_options

__all__ = [
    "PrepareOptions",
    "prepare",
    "prepare_options",
    "prepare_figure",
    "CENTRE_METHODS",
    "centre_of_mass",
    "friedel_centre",
    "friedel_correlation",
    "extract",
    "window_start",
    "shift_to_centre",
    "crop_or_pad",
    "bin_pattern",
    "apply_threshold",
    "estimate_oversampling",
    "auto_bin",
    "zero_mask",
    "negative_mask",
    "saturated_mask",
    "gap_mask",
    "dilate_mask",
    "ball",
]
