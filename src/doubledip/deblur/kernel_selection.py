r"""Choosing kernels and weights by held-out pixels: :func:`holdout_error`, :func:`select_kernel`, :func:`select_weight`.

A blind kernel estimate cannot be checked against the truth, and the fit of a
deconvolved image to the data cannot rank kernels either: with the image free, a
delta kernel fits every observation.  Cross-validation can (Stone, "Cross-validatory
choice and assessment of statistical predictions", J. R. Stat. Soc. B 36, 111
(1974)).  A random fraction of the observed pixels, the set :math:`F`, is hidden;
the rest is deconvolved with the candidate kernel :math:`k` by the non-blind
total-variation step (:func:`~doubledip.deblur.nonblind.tv_deconvolve` with the
hidden pixels masked), and the hidden pixels are predicted by blurring that
estimate again:

.. math:: e(k) = \frac{1}{|F|} \sum_{i \in F} \big( (A_k\, \hat x_{k,\,-F})_i - y_i \big)^2 ,

averaged over ``folds`` independent random draws of :math:`F`.  A hidden pixel is
predicted from the estimate around it, which the prior fills from the measured
neighbours; a kernel too narrow, too wide or of the wrong shape predicts them worse.
Every candidate sees the same hidden sets and the same noise, so the comparison
is paired and differences far below the noise variance still rank the kernels.
This is the deconvolution analogue of the free R-factor of crystallography
(Brünger, Nature 355, 472 (1992)) and of the free pixels of phase retrieval.

With the kernel fixed, the same error ranks TV weights :math:`\lambda`
(:func:`select_weight`): too small a weight fits the noise around a hidden pixel, too
large a one smooths its structure away.  With a kernel that is itself an estimate it
should not be used: a smaller weight lets the image make up for the kernel's errors and
predicts better, while the deconvolution it gives is worse.
"""

from __future__ import annotations

import numpy as np
import torch

from doubledip.deblur.model import blur
from doubledip.deblur.nonblind import tv_deconvolve

__all__ = ["holdout_error", "select_kernel", "select_weight"]


def _holdout_masks(shape, fraction: float, folds: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.random(shape) < fraction for _ in range(folds)]


def holdout_error(y, kernel, weight: float, *, fraction: float = 0.1, folds: int = 2, iterations: int = 100,
                  seed: int = 0, device: str = "cpu") -> float:
    r"""Mean squared prediction error :math:`e(k)` of held-out pixels of ``y`` (see the module notes).

    Parameters
    ----------
    y : ndarray, ``(H, W)``
        Observation (gray).
    kernel : ndarray, ``(K, K)``
        Candidate kernel (odd side, sums to one).
    weight : float
        TV weight of the deconvolution (:func:`~doubledip.deblur.nonblind.tv_weight`).
    fraction : float
        Fraction of pixels hidden per fold.
    folds : int
        Number of random hidden sets, drawn from ``seed``.
    iterations : int
        ADMM iterations per deconvolution.

    Returns
    -------
    float: the error in the units of ``y`` squared (about the noise variance for a good kernel).
    """
    y_t = torch.as_tensor(np.asarray(y), dtype=torch.float64, device=device)
    k_t = torch.as_tensor(np.asarray(kernel), dtype=torch.float64, device=device)
    errors = []
    for hidden in _holdout_masks(y_t.shape, fraction, folds, seed):
        mask = torch.as_tensor(hidden, device=device)
        x = tv_deconvolve(y_t, k_t, weight, iterations=iterations, mask=mask)
        errors.append(float((blur(x, k_t) - y_t)[mask].square().mean()))
    return float(np.mean(errors))


def _least_error(y, pairs, what: str, kwargs) -> tuple[int, list[float]]:
    errors = [holdout_error(y, k, w, **kwargs) for k, w in pairs]
    if not errors:
        raise ValueError(f"{what} needs at least one candidate")
    return int(np.argmin(errors)), errors


def select_kernel(y, candidates, weight: float, **kwargs) -> tuple[int, list[float]]:
    """Index of the candidate kernel of least :func:`holdout_error` on ``y``, and all the errors.

    ``candidates`` is a sequence of kernels; every one is scored with the same hidden pixels
    (``kwargs`` go to :func:`holdout_error`, ``seed`` included).  Ties go to the earlier one.
    """
    return _least_error(y, [(k, weight) for k in candidates], "select_kernel", kwargs)


def select_weight(y, kernel, weights, **kwargs) -> tuple[int, list[float]]:
    r"""Index of the TV weight of least :func:`holdout_error` of ``y`` with a known ``kernel``, and all the errors.

    Cross-validated choice of the regularisation weight (Stone 1974; the held-out analogue
    of generalised cross-validation, Golub, Heath & Wahba, Technometrics 21, 215 (1979)):
    :math:`\hat\lambda = \arg\min_{\lambda \in \Lambda} e_\lambda(k)`, every weight scored
    with the same hidden pixels (``kwargs`` go to :func:`holdout_error`).  Ties go to the
    earlier one.  Meant for a kernel that is known, not estimated (see the module notes).
    """
    return _least_error(y, [(kernel, w) for w in weights], "select_weight", kwargs)
