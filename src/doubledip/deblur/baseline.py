r"""Non-blind baselines given the *true* kernel: Wiener and Richardson-Lucy (scikit-image).

Both scikit-image solvers assume a boundary condition (circular for Wiener,
zeros for Richardson-Lucy) that a real photograph does not satisfy; the
observation is therefore extended by symmetric reflection by the kernel size
before deconvolution and the result cropped back, which removes most of the
border ringing.

* :func:`wiener` -- :func:`skimage.restoration.wiener` with a Laplacian
  regulariser of weight ``balance``
  (:math:`\hat X = \bar K Y / (|K|^2 + \lambda |L|^2)`).
* :func:`richardson_lucy` -- :func:`skimage.restoration.richardson_lucy`, the
  Poisson maximum-likelihood iteration (Richardson, JOSA 62, 55 (1972); Lucy,
  AJ 79, 745 (1974)), ``iterations`` steps (the number of steps is its
  regularisation).

Colour images are processed channel by channel with the shared kernel.
"""

from __future__ import annotations

import numpy as np

__all__ = ["wiener", "richardson_lucy", "BASELINES"]


def _per_channel(fn, image, kernel):
    y = np.asarray(image, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    pad = max(k.shape)
    if y.ndim == 3:
        return np.stack([_per_channel(fn, y[..., c], k) for c in range(y.shape[-1])], axis=-1)
    extended = np.pad(y, pad, mode="symmetric")
    out = fn(extended, k)
    return out[pad:-pad, pad:-pad].astype(np.float32)


def wiener(blurry, kernel, *, balance: float = 0.01) -> np.ndarray:
    """Wiener-Hunt deconvolution of ``blurry`` with the known ``kernel``; see the module notes."""
    from skimage.restoration import wiener as sk_wiener

    return _per_channel(lambda y, k: sk_wiener(y, k, balance, clip=False), blurry, kernel)


def richardson_lucy(blurry, kernel, *, iterations: int = 30) -> np.ndarray:
    """Richardson-Lucy deconvolution (``iterations`` steps) with the known ``kernel``; see the module notes."""
    from skimage.restoration import richardson_lucy as sk_rl

    def run(y, k):
        return sk_rl(np.clip(y, 0, None), k, num_iter=int(iterations), clip=False)

    return _per_channel(run, blurry, kernel)


BASELINES = {"wiener": wiener, "richardson-lucy": richardson_lucy}
