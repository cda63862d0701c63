r"""Total-variation blind deconvolution by alternating normalised gradient steps: a screening candidate.

Not part of the package (measured as a fourth kernel candidate and not adopted, see
``docs/results.md``); ``deblur_kernel_choice.py`` offers it as the variant ``tv``.

It minimises

.. math:: \min_{u,\,k}\; \lVert k * u - y\rVert^2 + \lambda\,\mathrm{TV}(u)
          \quad\text{s.t. } k \ge 0,\ \textstyle\sum k = 1,

with the 'valid' convolution (``u`` lives on the ``(H + K - 1) x (W + K - 1)`` grid, so no
boundary condition), by alternating one gradient step on ``u`` of length ``5e-3 max(u)`` in its
largest entry and one on ``k`` of length ``1e-3 max(k)``, followed by clipping and
normalisation of ``k`` -- the scheme whose delayed normalisation avoids the no-blur solution
(Perrone & Favaro, "Total variation blind deconvolution: the devil is in the details", CVPR
2014).  Coarse to fine: the kernel side shrinks by 1.1 and :math:`\lambda` grows by 1.9 per
level, capped at 0.11.  The paper stops the pyramid where :math:`\lambda` reaches the cap
(``stop_at_cap``), which with our size bound of twice the blur leaves the coarsest kernel half
as wide as the finest; by default the pyramid goes down to a 3-pixel kernel.  ``steps`` per
level at ``step_scale`` times the paper's step lengths (300 at 3x took about a third of the time of
the paper's 1000 at 1x, with similar kernel errors on six cases).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sfft
from scipy import ndimage


def _tv_gradient(u: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """Gradient of the smoothed isotropic TV, :math:`-\\nabla\\cdot(\\nabla u / \\sqrt{|\\nabla u|^2 + \\epsilon^2})`."""
    gx = np.diff(u, axis=1, append=u[:, -1:])
    gy = np.diff(u, axis=0, append=u[-1:, :])
    mag = np.sqrt(gx * gx + gy * gy + eps * eps)
    px, py = gx / mag, gy / mag
    return -(np.diff(px, axis=1, prepend=0 * px[:, :1]) + np.diff(py, axis=0, prepend=0 * py[:1, :]))


def _alternate(y, k, u, lam: float, steps: int, step_scale: float):
    """``steps`` alternating normalised gradient steps on ``u`` and ``k`` at one pyramid level."""
    m, n = y.shape
    side = k.shape[0]
    shape = (sfft.next_fast_len(m + 2 * side - 2, real=True), sfft.next_fast_len(n + 2 * side - 2, real=True))

    def residual(fu, fk):
        return sfft.irfft2(fu * fk, s=shape)[side - 1:m + side - 1, side - 1:n + side - 1] - y

    for _ in range(steps):
        fk = sfft.rfft2(k, s=shape)
        fr = sfft.rfft2(residual(sfft.rfft2(u, s=shape), fk), s=shape)
        grad_u = sfft.irfft2(fr * sfft.rfft2(k[::-1, ::-1], s=shape), s=shape)[:u.shape[0], :u.shape[1]]
        grad_u += lam * _tv_gradient(u)
        u = u - step_scale * 5e-3 * max(u.max(), 1e-6) / max(np.abs(grad_u).max(), 1e-31) * grad_u
        fu = sfft.rfft2(u, s=shape)
        fr = sfft.rfft2(residual(fu, fk), s=shape)
        grad_k = sfft.irfft2(fu * np.conj(fr), s=shape)[:side, :side][::-1, ::-1]
        k = np.clip(k - step_scale * 1e-3 * k.max() / max(np.abs(grad_k).max(), 1e-31) * grad_k, 0, None)
        k = k / k.sum()
    return u, k


def tv_blind_kernel(blurry, size: int, *, lam: float | None = None, steps: int = 300, step_scale: float = 3.0,
                    stop_at_cap: bool = False, lam_growth: float = 1.9, lam_cap: float = 0.11,
                    side_ratio: float = 1.1, threshold: float = 0.05) -> np.ndarray:
    """Kernel of side ``size`` (odd) from ``blurry`` (``(H, W)`` or ``(H, W, C)``, about [0, 1]).

    ``lam`` at the finest level: None takes the package's rule TV weight of the estimated noise
    (at least 3e-4, the paper's typical value).  Entries below ``threshold`` of the maximum are
    cleared at the end; the result is nonnegative, sums to one and is centred.
    """
    from doubledip.deblur.kernel_estimate import _contrast_stretch, _resize_kernel
    from doubledip.deblur.kernels import centre_kernel
    from doubledip.deblur.model import noise_level
    from doubledip.deblur.nonblind import tv_weight

    y = np.asarray(blurry, dtype=np.float64)
    y = _contrast_stretch(y.mean(axis=-1) if y.ndim == 3 else y)
    if lam is None:
        lam = max(3e-4, tv_weight(noise_level(y)))
    h, w = y.shape
    sides, lams, shapes = [size], [lam], [(h, w)]
    while sides[-1] > 3 and (not stop_at_cap or lams[-1] * lam_growth < lam_cap):
        side = int(round(sides[-1] / side_ratio))
        side -= 1 - side % 2
        side = max(3, side - 2 if side == sides[-1] else side)
        factor = sides[-1] / side
        shapes.append((int(round(shapes[-1][0] / factor)), int(round(shapes[-1][1] / factor))))
        sides.append(side)
        lams.append(min(lams[-1] * lam_growth, lam_cap))
    u = k = None
    for level in reversed(range(len(sides))):
        (m, n), side = shapes[level], sides[level]
        ys = ndimage.zoom(y, (m / h, n / w), order=3) if level else y
        if u is None:
            u = np.pad(ys, side // 2, mode="edge")
            k = np.full((side, side), 1.0 / side**2)
        else:
            u = ndimage.zoom(u, ((m + side - 1) / u.shape[0], (n + side - 1) / u.shape[1]), order=3)
            k = _resize_kernel(k, side, order=3)
        u, k = _alternate(ys, k, u, lams[level], steps, step_scale)
    k = np.clip(k, 0, None)
    k[k < threshold * k.max()] = 0
    return centre_kernel(k / k.sum())
