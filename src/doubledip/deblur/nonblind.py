r"""Non-blind deconvolution with a total-variation prior and no boundary assumption: :func:`tv_deconvolve`.

Given the kernel, the sharp image is

.. math:: \hat x = \arg\min_x \tfrac12 \lVert A_k x - y\rVert^2 + \lambda \sum_i \lVert(\nabla x)_i\rVert_2,

with :math:`A_k` the 'valid' convolution of :mod:`doubledip.deblur.model` (``x`` on the
grid :math:`(H + K_1 - 1) \times (W + K_2 - 1)`, so no boundary condition is assumed
and the border does not ring) and the isotropic total variation (Rudin, Osher &
Fatemi, Physica D 60, 259 (1992)), whose sparse gradients keep edges sharp where a
quadratic (Tikhonov) prior leaves ringing around them.

It is solved by the alternating direction method of multipliers with the splitting of
Almeida & Figueiredo, "Deconvolving images with unknown boundaries using the
alternating direction method of multipliers", IEEE TIP 22, 3074 (2013): write
:math:`A_k = M C_k` with :math:`C_k` the *circular* convolution on the extended grid
and :math:`M` the crop to the valid pixels, and split :math:`u = C_k x`,
:math:`v = \nabla x` (periodic differences).  With scaled duals :math:`d_u, d_v`,

.. math::
    x &\leftarrow (\rho_u C_k^T C_k + \rho_v \nabla^T\nabla)^{-1}
         \big(\rho_u C_k^T (u - d_u) + \rho_v \nabla^T (v - d_v)\big) \quad\text{(diagonal in Fourier space)},\\
    u &\leftarrow (M^T y + \rho_u (C_k x + d_u)) / (M^T M + \rho_u) \quad\text{(pixel-wise)},\\
    v &\leftarrow \mathrm{shrink}(\nabla x + d_v,\; \lambda / \rho_v) \quad\text{(vector soft threshold)},\\
    d_u &\leftarrow d_u + C_k x - u, \qquad d_v \leftarrow d_v + \nabla x - v,

every step in closed form at the cost of a few FFTs.  The margin outside the valid
region is filled by the prior alone; it is widened to an FFT-friendly size (a prime
side would make every FFT several times slower), which changes nothing else.
"""

from __future__ import annotations

import torch
from scipy.fft import next_fast_len

__all__ = ["tv_deconvolve", "tv_weight"]


def tv_weight(sigma: float, *, scale: float = 0.6) -> float:
    r"""The TV weight :math:`\lambda = s\,\sigma^{3/2}` for Gaussian noise of std :math:`\sigma` (intensities ~[0, 1]).

    The maximum a posteriori weight of a Laplacian gradient prior is
    :math:`\sigma^2 / b` with :math:`b` the mean absolute gradient; a TV estimate
    at that weight over-smooths at high noise and the best weight on the
    deblurring suite grew more slowly, as :math:`\sigma^{3/2}` (tuned value
    ``scale`` = 0.6, see ``docs/results.md``).
    """
    return float(scale) * max(float(sigma), 1e-4) ** 1.5


def _difference_spectra(shape, dtype, device):
    dy = torch.zeros(shape, dtype=dtype, device=device)
    dy[0, 0], dy[1, 0] = 1.0, -1.0
    dx = torch.zeros(shape, dtype=dtype, device=device)
    dx[0, 0], dx[0, 1] = 1.0, -1.0
    return torch.fft.rfft2(dy), torch.fft.rfft2(dx)


def tv_deconvolve(y: torch.Tensor, kernel: torch.Tensor, weight: float, *, iterations: int = 100,
                  rho_data: float = 0.2, rho_prior: float | None = None,
                  x0: torch.Tensor | None = None, mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""Total-variation deconvolution of ``y`` with a known ``kernel``, no boundary condition (see the module notes).

    Parameters
    ----------
    y : Tensor, ``(..., H, W)``
        Observation (leading axes, e.g. colour channels, are deconvolved independently).
    kernel : Tensor, ``(K1, K2)``
        Blur kernel with its centre at ``K // 2`` (odd sides), as in :func:`~doubledip.deblur.model.blur`.
    weight : float
        :math:`\lambda`, in the units of :math:`\tfrac12\lVert A_k x - y\rVert^2` (see :func:`tv_weight`).
    iterations : int
        ADMM iterations.
    rho_data, rho_prior : float
        Penalty parameters :math:`\rho_u` and :math:`\rho_v` (default :math:`\rho_v = 100\lambda`, so the
        soft threshold is 0.01 in gradient units; both only change the speed of convergence).
    x0 : Tensor, optional
        Start on the extended grid; default ``y`` padded by replication.
    mask : Tensor, optional, ``(H, W)``
        Nonzero = pixel left out of the data term (unmeasured, saturated or held out); the
        prior fills it in like the margin.

    Returns
    -------
    Tensor, ``(..., H + K1 - 1, W + K2 - 1)``: the image on the extended grid (its central
    ``(H, W)`` lines up with ``y``).

    References
    ----------
    Almeida & Figueiredo, IEEE TIP 22, 3074 (2013); Boyd et al., "Distributed optimization and
    statistical learning via the alternating direction method of multipliers", Found. Trends Mach.
    Learn. 3, 1 (2011).
    """
    if weight <= 0:
        raise ValueError(f"the TV weight must be > 0, got {weight}")
    k1, k2 = kernel.shape[-2:]
    h, w = y.shape[-2:]
    extended = (h + k1 - 1, w + k2 - 1)
    shape = tuple(next_fast_len(n, real=True) for n in extended)  # a wider margin is harmless: prior only
    rho_u = float(rho_data)
    rho_v = 100.0 * weight if rho_prior is None else float(rho_prior)
    fk = torch.fft.rfft2(kernel.to(y.dtype), s=shape)
    fdy, fdx = _difference_spectra(shape, y.dtype, y.device)
    denominator = rho_u * fk.abs().square() + rho_v * (fdy.abs().square() + fdx.abs().square())
    valid = torch.zeros(shape, dtype=y.dtype, device=y.device)
    valid[k1 - 1:extended[0], k2 - 1:extended[1]] = 1.0 if mask is None else (mask == 0).to(y.dtype)
    observed = torch.zeros(y.shape[:-2] + shape, dtype=y.dtype, device=y.device)
    observed[..., k1 - 1:extended[0], k2 - 1:extended[1]] = y
    observed = observed * valid

    def spatial(spectrum):
        return torch.fft.irfft2(spectrum, s=shape)

    if x0 is None:
        top, left = (k1 - 1) // 2, (k2 - 1) // 2
        x0 = torch.nn.functional.pad(y.reshape((-1, 1, h, w)), (left, k2 - 1 - left, top, k1 - 1 - top),
                                     mode="replicate").reshape(y.shape[:-2] + extended)
    grow = (0, shape[1] - extended[1], 0, shape[0] - extended[0])
    x0 = torch.nn.functional.pad(x0.to(y.dtype).reshape((-1, 1) + extended), grow, mode="replicate")
    fx = torch.fft.rfft2(x0.reshape(y.shape[:-2] + shape))
    cx, gy, gx = spatial(fk * fx), spatial(fdy * fx), spatial(fdx * fx)
    du = torch.zeros_like(cx)
    dvy, dvx = torch.zeros_like(gy), torch.zeros_like(gx)
    threshold = weight / rho_v
    for _ in range(iterations):
        u = (observed + rho_u * (cx + du)) / (valid + rho_u)
        ay, ax = gy + dvy, gx + dvx
        norm = torch.sqrt(ay * ay + ax * ax)
        shrink = torch.clamp(1.0 - threshold / norm.clamp_min(1e-30), min=0.0)
        vy, vx = shrink * ay, shrink * ax
        rhs = (rho_u * fk.conj() * torch.fft.rfft2(u - du)
               + rho_v * (fdy.conj() * torch.fft.rfft2(vy - dvy) + fdx.conj() * torch.fft.rfft2(vx - dvx)))
        fx = rhs / denominator
        cx, gy, gx = spatial(fk * fx), spatial(fdy * fx), spatial(fdx * fx)
        du = du + cx - u
        dvy, dvx = dvy + gy - vy, dvx + gx - vx
    return spatial(fx)[..., :extended[0], :extended[1]]
