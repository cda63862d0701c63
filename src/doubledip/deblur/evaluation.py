r"""Quality of a blind deblurring estimate against the truth, after the best sub-pixel alignment.

Blind deconvolution recovers :math:`(x, k)` only up to a translation
:math:`(x(r - s), k(r + s))` (and a scale, fixed here by :math:`\sum k = 1`).
The estimate is therefore moved onto the truth before it is scored: the shift
maximises the cross-correlation of the (channel-averaged) images, refined to
about 0.01 pixel (:func:`doubledip.metrics.alignment` with
``symmetries=("translation",)``; Guizar-Sicairos, Thurman & Fienup, Opt. Lett.
33, 156 (2008)), and is applied by cubic-spline interpolation
(:func:`scipy.ndimage.shift`, no circular wrap).  PSNR and SSIM
(:func:`doubledip.metrics.psnr`, :func:`doubledip.metrics.ssim`, data range 1)
are taken on the image less a border of ``crop`` pixels (default: half the true
kernel plus the shift), as in the evaluation of Levin, Weiss, Durand & Freeman
(CVPR 2009).  The kernel error is :math:`\lVert k - S(\hat k)\rVert / \lVert k\rVert`
after its own best sub-pixel translation, both kernels zero-padded to a common
size.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage

from doubledip import metrics
from doubledip.deblur.kernels import embed_kernel

__all__ = ["aligned_scores", "kernel_error", "align_image"]


def _gray(image):
    a = np.asarray(image, dtype=np.float64)
    return a.mean(axis=-1) if a.ndim == 3 else a


def align_image(truth, estimate) -> tuple[np.ndarray, tuple[float, float]]:
    """``estimate`` shifted (sub-pixel) onto ``truth``; returns ``(aligned, shift)``."""
    truth, estimate = np.asarray(truth, np.float64), np.asarray(estimate, np.float64)
    g_truth, g_est = _gray(truth), _gray(estimate)
    # remove the means so the correlation peak is driven by structure, not by the DC level
    shift = metrics.alignment(g_truth - g_truth.mean(), g_est - g_est.mean(), symmetries=("translation",),
                              subpixel=True).shift
    full = tuple(shift) + ((0.0,) if estimate.ndim == 3 else ())
    aligned = ndimage.shift(estimate, full, order=3, mode="nearest") if any(full) else estimate
    return aligned, (float(shift[0]), float(shift[1]))


def kernel_error(truth, estimate) -> float:
    """Relative L2 error of a kernel estimate after the best sub-pixel translation (both normalised to sum 1)."""
    k, kh = np.asarray(truth, np.float64), np.asarray(estimate, np.float64)
    k, kh = k / k.sum(), np.clip(kh, 0, None) / max(np.clip(kh, 0, None).sum(), 1e-300)
    size = 2 * max(max(k.shape), max(kh.shape)) + 1
    k, kh = embed_kernel(k, size), embed_kernel(kh, size)
    return float(metrics.alignment(k, kh, symmetries=("translation",), subpixel=True).error)


def aligned_scores(truth, estimate, *, kernel=None, kernel_estimate=None, crop: int | None = None) -> dict:
    """PSNR/SSIM after alignment and cropping, the shift, and the kernel error when both kernels are given.

    Parameters
    ----------
    truth, estimate : ndarray, same shape ``(H, W)`` or ``(H, W, 3)``, intensities in [0, 1]
    kernel, kernel_estimate : ndarray, optional
        True and estimated kernels.
    crop : int, optional
        Border left out; default ``K // 2`` of the true kernel (8 without one) plus the
        rounded-up shift.

    Returns
    -------
    dict with ``psnr``, ``ssim``, ``shift``, ``crop`` and ``kernel_error`` (None without kernels)
    """
    truth = np.asarray(truth, np.float64)
    estimate = np.asarray(estimate, np.float64)
    if truth.shape != estimate.shape:
        raise ValueError(f"truth shape {truth.shape} and estimate shape {estimate.shape} differ")
    aligned, shift = align_image(truth, estimate)
    if crop is None:
        base = max(np.shape(kernel)) // 2 if kernel is not None else 8
        crop = base + int(math.ceil(max(abs(s) for s in shift)))
    crop = int(min(crop, (min(truth.shape[:2]) - 4) // 2))
    window = (slice(crop, truth.shape[0] - crop), slice(crop, truth.shape[1] - crop))
    t, e = truth[window], aligned[window]
    if t.ndim == 3:
        ssim_value = float(np.mean([metrics.ssim(t[..., c], e[..., c], data_range=1.0) for c in range(t.shape[-1])]))
    else:
        ssim_value = metrics.ssim(t, e, data_range=1.0)
    out = {"psnr": metrics.psnr(t, e, data_range=1.0), "ssim": ssim_value, "shift": list(shift), "crop": crop,
           "kernel_error": None}
    if kernel is not None and kernel_estimate is not None:
        out["kernel_error"] = kernel_error(kernel, kernel_estimate)
    return out
