r"""Coarse-to-fine kernel estimation with an :math:`\ell_0` gradient prior (the kernel's initial value).

Blind deconvolution by joint descent from a broad initial kernel tends to stall
near the no-blur solution; the classical remedy is to estimate the kernel from
the *strong edges* of a sparse latent image, coarse to fine (Fergus et al.,
SIGGRAPH 2006; Cho & Lee, SIGGRAPH Asia 2009).  :func:`estimate_kernel`
alternates, on an image pyramid with ratio :math:`1/\sqrt 2` whose coarsest
level holds a kernel of about 5 pixels,

* the latent image :math:`\min_x \lVert k * x - y\rVert^2 + \lambda \lVert\nabla x\rVert_0`,
  by half-quadratic splitting (Xu, Lu, Xu & Jia, "Image smoothing via :math:`L_0`
  gradient minimization", SIGGRAPH Asia 2011): with auxiliary gradients
  :math:`g`, :math:`g \leftarrow \nabla x\,[\,|\nabla x|^2 \ge \lambda/\beta\,]`
  and :math:`\hat x = (\bar{\hat k}\hat y + \beta\,\bar{\hat D}^T \hat g) /
  (|\hat k|^2 + \beta |\hat D|^2)`, for :math:`\beta = 2\lambda, 4\lambda, \dots, 10^5`;
* the kernel on gradients :math:`\min_k \sum_{d} \lVert k * \partial_d x - \partial_d y\rVert^2 + \gamma \lVert k\rVert^2`
  in closed form in Fourier space, then restricted to the ``size x size``
  window; at low noise (``nonneg_below``) it is then solved again on the window
  under :math:`k \ge 0` by accelerated projected gradient (FISTA; Beck & Teboulle,
  SIAM J. Imaging Sci. 2, 183 (2009)), started from the clipped closed form, which
  keeps the positive mass from spreading to cancel negative lobes; finally it is
  cleared of negative and small (below ``threshold`` times the maximum)
  entries and of connected pieces holding less than ``threshold`` of the mass,
  recentred and normalised to sum one

(Pan, Hu, Su & Yang, ":math:`L_0`-regularized intensity and gradient prior for
deblurring text images and beyond", IEEE TPAMI 39, 342 (2017); Xu, Zheng & Jia,
"Unnatural :math:`L_0` sparse representation for natural image deblurring", CVPR
2013).  :math:`\lambda` shrinks by ``lam_decay`` per iteration so finer edges join
the estimate.  The FFTs see the observation made periodic by a smooth blend across
a margin of one kernel side (Liu & Jia, "Reducing boundary artifacts in image
deconvolution", ICIP 2008), whose weak gradients barely enter the kernel step.

Noise is the enemy of the kernel step (it fits noisy gradients): the observation
is first stretched to a unit contrast range, a noisy one (robust noise estimate
above ``denoise_above``) is denoised by non-local means, and pyramid levels that
are still too noisy are skipped (the kernel of the finest level used is
upsampled).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from doubledip.deblur.kernels import centre_kernel, embed_kernel, odd_size
from doubledip.deblur.model import noise_level

__all__ = ["estimate_kernel", "periodic_extension"]


def periodic_extension(image: np.ndarray, margin: int) -> np.ndarray:
    """``image`` (``(H, W)``) grown by ``margin`` rows and columns that blend linearly back to its opposite edges.

    The result, of shape ``(H + margin, W + margin)``, is continuous under periodic
    wrap-around, so an FFT sees no jump at the border.
    """
    a = np.asarray(image, dtype=np.float64)
    if margin <= 0:
        return a.copy()
    t = (np.arange(1, margin + 1) / (margin + 1))[:, None]
    rows = (1 - t) * a[-1:, :] + t * a[:1, :]
    a = np.concatenate([a, rows], axis=0)
    cols = (1 - t.T) * a[:, -1:] + t.T * a[:, :1]
    return np.concatenate([a, cols], axis=1)


def _otf(kernel: np.ndarray, shape) -> np.ndarray:
    """Real FFT of ``kernel`` zero-padded to ``shape`` with its centre pixel moved to the origin."""
    k1, k2 = kernel.shape
    padded = np.zeros(shape)
    padded[:k1, :k2] = kernel
    padded = np.roll(padded, (-(k1 // 2), -(k2 // 2)), axis=(0, 1))
    return sfft.rfft2(padded)


def _difference_otfs(shape):
    dy = np.zeros(shape)
    dy[0, 0], dy[-1, 0] = -1, 1
    dx = np.zeros(shape)
    dx[0, 0], dx[0, -1] = -1, 1
    return sfft.rfft2(dy), sfft.rfft2(dx)


def _grad(x):
    return np.roll(x, -1, axis=0) - x, np.roll(x, -1, axis=1) - x


def _l0_latent(y, k, lam, *, beta_max=1e5, rate=2.0):
    shape = y.shape
    fk = _otf(k, shape)
    fdy, fdx = _difference_otfs(shape)
    fy = sfft.rfft2(y)
    num0 = np.conj(fk) * fy
    den0 = np.abs(fk) ** 2
    dd = np.abs(fdy) ** 2 + np.abs(fdx) ** 2
    x = y.copy()
    beta = 2 * lam
    while beta < beta_max:
        gy, gx = _grad(x)
        small = gy * gy + gx * gx < lam / beta
        gy[small], gx[small] = 0, 0
        num = num0 + beta * (np.conj(fdy) * sfft.rfft2(gy) + np.conj(fdx) * sfft.rfft2(gx))
        x = sfft.irfft2(num / (den0 + beta * dd), s=shape)
        beta *= rate
    return x


def _clean(k, threshold):
    k = np.clip(k, 0, None)
    if not k.max() > 0:
        return None
    k[k < threshold * k.max()] = 0
    labels, n = ndimage.label(k > 0, structure=np.ones((3, 3)))
    if n > 1:
        mass = ndimage.sum(k, labels, index=np.arange(1, n + 1))
        k[np.isin(labels, 1 + np.flatnonzero(mass < threshold * mass.sum()))] = 0
    total = k.sum()
    return centre_kernel(k / total) if total > 0 else None


def _contrast_stretch(y: np.ndarray, *others: np.ndarray):
    """``y`` (and ``others``, by the same map) with the 1st-99th percentile range of ``y`` stretched to [0, 1].

    Makes the prior weights of :func:`estimate_kernel` mean the same for images of low contrast.
    Returns one array, or a tuple when ``others`` are given.
    """
    lo, hi = np.percentile(y, (1, 99))
    out = tuple((np.asarray(a, dtype=np.float64) - lo) / max(hi - lo, 1e-6) for a in (y,) + others)
    return out if others else out[0]


def _window(a, size):
    """The ``size x size`` window of a periodic array centred on its origin (lags -size//2 .. size//2)."""
    return np.roll(a, (size // 2, size // 2), axis=(0, 1))[:size, :size]


def _nonneg_kernel(num, den, ridge, shape, size, start, iterations):
    r"""Accelerated projected gradient (FISTA; Beck & Teboulle, SIAM J. Imaging Sci. 2, 183 (2009)) for
    :math:`\min_{k \ge 0} \tfrac12 k^T A k - b^T k + \tfrac{\rho}2\lVert k\rVert^2` on the kernel window,
    where :math:`A` is the gradients' autocorrelation (power spectrum ``den``) and :math:`b` their
    cross-correlation with the observation's (``num``)."""
    b = _window(sfft.irfft2(num, s=shape), size)
    lags = _window(sfft.irfft2(den, s=shape), 2 * size - 1)
    pad = (3 * size - 2, 3 * size - 2)
    f_lags = sfft.rfft2(lags, s=pad)

    def apply(k):
        full = sfft.irfft2(sfft.rfft2(k, s=pad) * f_lags, s=pad)
        return full[size - 1:2 * size - 1, size - 1:2 * size - 1] + ridge * k

    step = 1.0 / (den.max() + ridge)
    k = np.clip(start, 0, None)
    z, t = k.copy(), 1.0
    for _ in range(iterations):
        k_new = np.clip(z - step * (apply(z) - b), 0, None)
        t_new = 0.5 * (1 + math.sqrt(1 + 4 * t * t))
        z = k_new + ((t - 1) / t_new) * (k_new - k)
        k, t = k_new, t_new
    return k


def _kernel_step(x, y, size, gamma, threshold, nonneg_iterations=0):
    shape = y.shape
    num, den = 0.0, 0.0
    for gx, gy in zip(_grad(x), _grad(y)):
        fx = sfft.rfft2(gx)
        num = num + np.conj(fx) * sfft.rfft2(gy)
        den = den + np.abs(fx) ** 2
    ridge = gamma * den.mean()
    if not ridge > 0:  # no edges at all: nothing to learn the kernel from
        return None
    k = _window(sfft.irfft2(num / (den + ridge), s=shape), size)
    if nonneg_iterations:
        k = _nonneg_kernel(num, den, ridge, shape, size, k, nonneg_iterations)
    return _clean(k, threshold)


def _resize_kernel(k, size, order: int = 1):
    """``k`` zoomed to ``size x size`` (spline ``order``), clipped to >= 0 and normalised."""
    factor = size / k.shape[0]
    z = np.clip(ndimage.zoom(k, factor, order=order), 0, None)
    z = embed_kernel(z, size) if z.shape[0] != size else z
    total = z.sum()
    return z / total if total > 0 else embed_kernel(np.ones((1, 1)), size)


def estimate_kernel(blurry, size: int, *, lam: float = 4e-3, lam_decay: float = 1.1, lam_min: float = 1e-4,
                    gamma: float = 1.0, threshold: float = 0.05, iterations: int = 5, ratio: float = math.sqrt(0.5),
                    min_size: int = 5, min_side: int = 64,
                    normalise: bool = True, max_noise: float | None = 0.02, denoise_above: float | None = 0.015,
                    denoise_h: float = 0.8, nonneg_below: float = 0.04,
                    nonneg_iterations: int = 100) -> np.ndarray:
    r"""Blind kernel estimate of side ``size`` from ``blurry`` by coarse-to-fine :math:`\ell_0` alternation.

    See the module notes for the two steps and the references.

    Parameters
    ----------
    blurry : ndarray, ``(H, W)`` (gray) or ``(H, W, C)`` (channels averaged), about [0, 1]
    size : int
        Kernel side (an upper bound on the blur; rounded up to odd).
    lam : float
        Initial weight :math:`\lambda` of the :math:`\ell_0` gradient prior.
    lam_decay, lam_min : float
        :math:`\lambda` is divided by ``lam_decay`` after every alternation, down to ``lam_min``.
    gamma : float
        Kernel ridge weight, relative to the mean gradient power spectrum.
    threshold : float
        Kernel entries below this fraction of the maximum, and connected pieces with less
        than this fraction of the mass, are cleared.
    iterations : int
        Alternations per pyramid level.
    ratio : float
        Scale ratio between pyramid levels.
    min_size, min_side : int
        The coarsest level has a kernel side of about ``min_size`` and an image side of at
        least ``min_side``.
    normalise : bool
        Stretch the 1st-99th percentile range of ``blurry`` to [0, 1] first, so that
        ``lam`` means the same for images of low contrast.
    max_noise : float or None
        Levels whose noise (the robust estimate of
        :func:`~doubledip.deblur.model.noise_level` of the stretched observation, times the
        level's scale: averaging lowers it) is above this are skipped, and the kernel of the
        finest level used is upsampled to ``size`` -- noisy gradients make the kernel step
        fail.  None: use every level.
    denoise_above, denoise_h : float
        When the noise of the stretched observation exceeds ``denoise_above`` (None:
        never), the kernel is estimated from a non-local-means denoised copy
        (:func:`skimage.restoration.denoise_nl_means` with ``h = denoise_h`` times the
        noise; Buades, Coll & Morel, CVPR 2005), which keeps the strong edges the kernel
        step needs (the pre-filtering idea of Zhong, Cho, Metaxas, Paris & Wang, CVPR 2013).
    nonneg_below : float
        When the noise of the stretched observation is below this (0: never), every kernel
        step ends with ``nonneg_iterations`` of accelerated projected gradient on the window
        under :math:`k \ge 0`, started from the clipped closed form (see the module notes).
    nonneg_iterations : int
        Iterations of that projected gradient.

    Returns
    -------
    ndarray, float64, ``(size, size)``: nonnegative, sums to one, centre of mass at ``size // 2``.
    """
    y = np.asarray(blurry, dtype=np.float64)
    if y.ndim == 3:
        y = y.mean(axis=-1)
    if normalise:
        y = _contrast_stretch(y)
    size = odd_size(size)
    coarsest = max(min_size / size, min_side / min(y.shape))
    levels = max(1, int(math.ceil(math.log(coarsest) / math.log(ratio))) + 1) if coarsest < 1 else 1
    finest = 0
    sigma = noise_level(y)
    nonneg = nonneg_iterations if sigma < nonneg_below else 0
    if denoise_above is not None and sigma > denoise_above:
        from skimage.restoration import denoise_nl_means

        y = denoise_nl_means(y, h=denoise_h * sigma, sigma=sigma, patch_size=5, patch_distance=6, fast_mode=True)
        sigma = noise_level(y)
    if max_noise and sigma > max_noise:
        finest = min(levels - 1, int(math.ceil(math.log(max_noise / sigma) / math.log(ratio))))
    k = None
    for level in reversed(range(finest, levels)):
        scale = ratio**level
        ksize = max(3, odd_size(int(round(size * scale))))
        if level == 0:
            ys = y
        else:  # anti-aliased downsampling
            ys = ndimage.zoom(ndimage.gaussian_filter(y, 0.5 * math.sqrt(1 / scale**2 - 1)), scale, order=1)
        if k is None:
            k = embed_kernel(np.full((3, 3), 1 / 9.0), ksize)
        else:
            k = _resize_kernel(k, ksize)
        yp = periodic_extension(ys, ksize)
        lam_now = lam
        for _ in range(iterations):
            x = _l0_latent(yp, k, lam_now)
            new = _kernel_step(x, yp, ksize, gamma, threshold, nonneg_iterations=nonneg)
            if new is not None:
                k = new
            lam_now = max(lam_now / lam_decay, lam_min)
    return _resize_kernel(k, size) if k.shape[0] != size else k
