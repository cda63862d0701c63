r"""The blur forward model :math:`y = k * x + n` without circular wrap-around.

The sharp image is estimated on a grid *larger* than the observation by the
kernel size minus one, :math:`M = H + K - 1`, and the model keeps only the
'valid' part of the linear convolution,

.. math:: (A_k x)[n] = \sum_{j=0}^{K-1} k[j]\, x[n + K - 1 - j], \qquad n = 0, \dots, H - 1,

so every observed pixel sees only image pixels the generator produces: no
boundary condition is assumed, hence no ringing at the border (the extended
margin absorbs what the blur brought in from outside the field of view;
Reeves, "Fast image restoration without boundary artifacts", IEEE TIP 14, 1448
(2005)).  A circular convolution of length :math:`M` has no wrap-around on the
valid indices, so the model is computed with real FFTs of size :math:`M`.  The
kernel has an odd side with its centre at ``K // 2``; then ``y`` lines up with
the central :math:`H` pixels of ``x`` (:func:`crop_centre`).

Colour images are ``(3, H, W)`` inside the solver (``(H, W, 3)`` at the numpy
boundary) and share one kernel.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["blur", "blur_adjoint", "BlurOperator", "crop_centre", "degrade", "NOISE_TYPES", "noise_level",
           "tikhonov_deconvolve", "gcv_weight"]

NOISE_TYPES = ("gaussian", "poisson", "impulse")


def blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Valid 2D convolution of ``x`` (``(..., M1, M2)``) with ``kernel`` (``(K1, K2)``) -> ``(..., M1-K1+1, M2-K2+1)``."""
    m = tuple(int(s) for s in x.shape[-2:])
    k1, k2 = kernel.shape[-2:]
    spectrum = torch.fft.rfft2(x, s=m) * torch.fft.rfft2(kernel, s=m)
    return torch.fft.irfft2(spectrum, s=m)[..., k1 - 1:, k2 - 1:]


def blur_adjoint(y: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`blur` in ``x``: zero-pad ``y`` to ``(H+K1-1, W+K2-1)`` and correlate with ``kernel``."""
    k1, k2 = kernel.shape[-2:]
    m = (y.shape[-2] + k1 - 1, y.shape[-1] + k2 - 1)
    padded = torch.nn.functional.pad(y, (k2 - 1, 0, k1 - 1, 0))
    spectrum = torch.fft.rfft2(padded, s=m) * torch.fft.rfft2(kernel, s=m).conj()
    return torch.fft.irfft2(spectrum, s=m)


def crop_centre(x, shape):
    """The central ``shape`` of the last two axes of ``x`` (numpy or torch)."""
    h, w = x.shape[-2:]
    top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
    return x[..., top:top + shape[0], left:left + shape[1]]


class BlurOperator:
    """:math:`A_k`: numpy/torch callable with ``adjoint``, for a fixed kernel (dot-testable).

    Parameters
    ----------
    kernel : array, ``(K1, K2)``
    image_shape : tuple
        Shape of the *observation* ``(H, W)`` (optionally with leading channels); the
        input then has ``(H + K1 - 1, W + K2 - 1)``.
    """

    def __init__(self, kernel, image_shape, *, device="cpu", dtype=torch.float64):
        self.kernel = torch.as_tensor(np.asarray(kernel), dtype=dtype, device=device)
        k1, k2 = self.kernel.shape
        self.data_shape = tuple(int(s) for s in image_shape)
        self.object_shape = self.data_shape[:-2] + (self.data_shape[-2] + k1 - 1, self.data_shape[-1] + k2 - 1)
        self.device = torch.device(device)

    def _apply(self, fn, v):
        is_np = not isinstance(v, torch.Tensor)
        t = torch.as_tensor(np.asarray(v) if is_np else v, device=self.device).to(self.kernel.dtype)
        out = fn(t, self.kernel)
        return out.cpu().numpy() if is_np else out

    def __call__(self, x):
        return self._apply(blur, x)

    def adjoint(self, y):
        return self._apply(blur_adjoint, y)


def degrade(image, kernel, *, noise: float = 0.01, noise_type: str = "gaussian", seed: int | None = None,
            rng: np.random.Generator | None = None) -> np.ndarray:
    r"""Blur a sharp image with ``kernel`` and add noise: a same-size observation with no wrap-around.

    The image is extended by symmetric reflection by ``K // 2`` on every side, blurred
    with :func:`blur` ('valid': the output has the image's shape), and

    * ``gaussian``: :math:`y = k * x + \sigma\,\xi`, :math:`\sigma` = ``noise`` (for
      images in [0, 1], the noise level relative to the range);
    * ``poisson``: :math:`y = \mathrm{Poisson}(\lambda\, k * x) / \lambda` with
      :math:`\lambda = 1 / \text{noise}^2` photons at intensity 1 (relative noise
      ``noise`` there);
    * ``impulse``: a fraction ``noise`` of the pixels replaced by 0 or 1 (salt and pepper).

    The result is not clipped (Gaussian noise goes below 0 and above 1), as a data
    term with Gaussian noise expects.

    Parameters
    ----------
    image : ndarray ``(H, W)`` or ``(H, W, C)`` in [0, 1]
    kernel : ndarray ``(K, K)``, odd sides, sums to one
    noise : float
    noise_type : {"gaussian", "poisson", "impulse"}
    seed, rng

    Returns
    -------
    ndarray, float32, the image's shape
    """
    if noise_type not in NOISE_TYPES:
        raise ValueError(f"unknown noise type '{noise_type}'; use {', '.join(NOISE_TYPES)}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    rng = rng if rng is not None else np.random.default_rng(seed)
    image = np.asarray(image, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    k1, k2 = kernel.shape
    chw = image[None] if image.ndim == 2 else np.moveaxis(image, -1, 0)
    pad = ((0, 0), (k1 // 2, k1 // 2), (k2 // 2, k2 // 2))
    extended = np.pad(chw, pad, mode="symmetric")
    y = blur(torch.from_numpy(extended), torch.from_numpy(kernel)).numpy()
    y = y[0] if image.ndim == 2 else np.moveaxis(y, 0, -1)
    if noise > 0:
        if noise_type == "gaussian":
            y = y + noise * rng.standard_normal(y.shape)
        elif noise_type == "poisson":
            lam = 1.0 / noise**2
            y = rng.poisson(np.clip(y, 0, None) * lam) / lam
        else:
            hit = rng.uniform(size=y.shape[:2]) < noise
            salt = rng.uniform(size=y.shape[:2]) < 0.5
            if y.ndim == 3:
                hit, salt = hit[..., None], salt[..., None]
            y = np.where(hit, salt.astype(np.float64), y)
    return y.astype(np.float32)


def noise_level(image) -> float:
    r"""Robust Gaussian noise std of an image: :math:`\mathrm{median}|HH| / 0.6745` of the finest diagonal
    Haar detail (Donoho & Johnstone, Biometrika 81, 425 (1994)); channels pooled."""
    a = np.asarray(image, dtype=np.float64)
    chw = a[None] if a.ndim == 2 else np.moveaxis(a, -1, 0)
    h, w = (chw.shape[1] // 2) * 2, (chw.shape[2] // 2) * 2
    c = chw[:, :h, :w]
    hh = (c[:, 0::2, 0::2] - c[:, 0::2, 1::2] - c[:, 1::2, 0::2] + c[:, 1::2, 1::2]) / 2
    return float(np.median(np.abs(hh)) / 0.6745)


def _gradient(x):
    return x[..., 1:, :] - x[..., :-1, :], x[..., :, 1:] - x[..., :, :-1]


def _gradient_adjoint(gy, gx):
    out = torch.zeros(gy.shape[:-2] + (gy.shape[-2] + 1, gy.shape[-1]), dtype=gy.dtype, device=gy.device)
    out[..., 1:, :] += gy
    out[..., :-1, :] -= gy
    out[..., :, 1:] += gx
    out[..., :, :-1] -= gx
    return out


def tikhonov_deconvolve(y: torch.Tensor, kernel: torch.Tensor, weight: float, *, iterations: int = 200,
                        x0: torch.Tensor | None = None, tol: float = 1e-6) -> torch.Tensor:
    r"""Non-blind deconvolution :math:`\min_x \lVert A_k x - y\rVert^2 + \lambda \lVert \nabla x\rVert^2` by conjugate gradients.

    ``x`` lives on the extended grid ``(H + K1 - 1, W + K2 - 1)`` of :func:`blur` (no
    boundary condition; the gradient term fills in the margin), ``y`` is ``(..., H, W)``.
    Solves the normal equations :math:`(A^T A + \lambda \nabla^T \nabla) x = A^T y`
    (Hestenes & Stiefel 1952) from ``x0`` (default :math:`A^T y`).
    """
    def normal(v):
        gy, gx = _gradient(v)
        return blur_adjoint(blur(v, kernel), kernel) + weight * _gradient_adjoint(gy, gx)

    b = blur_adjoint(y, kernel)
    x = b.clone() if x0 is None else x0.clone()
    r = b - normal(x)
    p = r.clone()
    rs = (r * r).sum()
    stop = tol**2 * float((b * b).sum())
    for _ in range(iterations):
        if float(rs) <= stop:
            break
        q = normal(p)
        alpha = rs / (p * q).sum()
        x = x + alpha * p
        r = r - alpha * q
        rs_new = (r * r).sum()
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x


def gcv_weight(y, kernel, *, grid=None) -> float:
    r"""The weight :math:`\lambda` of :func:`tikhonov_deconvolve` chosen by generalised cross-validation.

    In the periodic (Fourier) approximation the Tikhonov estimate is the filter
    :math:`\hat x = \bar{\hat k}\,\hat y / (|\hat k|^2 + \lambda |\hat D|^2)` with
    :math:`|\hat D|^2` the symbol of :math:`\nabla^T\nabla`, and the GCV function
    (Golub, Heath & Wahba, "Generalized cross-validation as a method for choosing a
    good ridge parameter", Technometrics 21, 215 (1979)) is

    .. math:: V(\lambda) = \frac{N \sum_\omega |1 - f_\lambda(\omega)|^2 |\hat y(\omega)|^2}
                               {\big(\sum_\omega (1 - f_\lambda(\omega))\big)^2},
              \qquad f_\lambda = \frac{|\hat k|^2}{|\hat k|^2 + \lambda |\hat D|^2},

    an estimate of the prediction error that needs no noise level.  ``y`` is made
    periodic first (:func:`doubledip.deblur.kernel_estimate.periodic_extension`), and
    :math:`V` is minimised over ``grid`` (default 37 values from :math:`10^{-6}` to 1,
    log-spaced).  Colour images use their channel mean.

    Parameters
    ----------
    y : ndarray, ``(H, W)`` or ``(C, H, W)``
    kernel : ndarray, ``(K1, K2)``
    grid : sequence of float, optional

    Returns
    -------
    float
    """
    from doubledip.deblur.kernel_estimate import _difference_otfs, _otf, periodic_extension

    a = np.asarray(y, dtype=np.float64)
    a = a.mean(axis=0) if a.ndim == 3 else a
    k = np.asarray(kernel, dtype=np.float64)
    grid = np.logspace(-6, 0, 37) if grid is None else np.asarray(grid, dtype=np.float64)
    yp = periodic_extension(a, max(k.shape))
    shape = yp.shape
    k2 = np.abs(_otf(k, shape)) ** 2
    fy2 = np.abs(np.fft.rfft2(yp)) ** 2
    d2 = sum(np.abs(d) ** 2 for d in _difference_otfs(shape))
    # rfft keeps half the spectrum: count the other half through the weights
    weight = np.full(k2.shape, 2.0)
    weight[:, 0] = 1.0
    if shape[1] % 2 == 0:
        weight[:, -1] = 1.0
    scores = []
    for lam in grid:
        one = lam * d2 / (k2 + lam * d2 + 1e-300)
        scores.append(float(np.sum(weight * one**2 * fy2) / np.sum(weight * one) ** 2))
    return float(grid[int(np.argmin(scores))])
