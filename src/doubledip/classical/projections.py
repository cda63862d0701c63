r"""Projections of the classical phasing algorithms (torch, batched over starts).

Arrays are in origin-first order (:mod:`doubledip.fft`), with leading batch axes
(one entry per random start) and the pattern grid in the trailing ``ndim`` axes.

The two constraint sets are

* the **modulus set** :math:`M = \{x : |(Fx)_k| = a_k \text{ for measured } k\}`,
  with :math:`a = \sqrt{I}`; masked and held-out ("free") pixels are not
  constrained, so the projection keeps the computed value there;
* the **object set** :math:`S = \{x : x = 0 \text{ outside the support}\}`,
  optionally with a real object (:math:`\operatorname{Im} x = 0`) and/or
  positivity (:math:`\operatorname{Re} x \ge 0`).  It is convex, and its
  projection acts on the real and imaginary parts of each pixel separately.

The projection on :math:`M` is

.. math:: P_M x = F^{-1}\Big[\, m \odot a \odot \frac{Fx}{|Fx|} + (1-m) \odot Fx \Big],

where :math:`m` is 1 on measured pixels.  Because :math:`F` is unitary it is
the Euclidean nearest point of :math:`M`.  (Where :math:`(Fx)_k = 0` exactly,
every point of the circle is nearest and no phase can be kept; the
implementation then leaves 0, an event of probability zero for random starts.)  Reference: J. R.
Fienup, "Phase retrieval algorithms: a comparison", Appl. Opt. 21, 2758 (1982).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from doubledip import fft

__all__ = [
    "FourierData",
    "prepare_data",
    "fourier_errors",
    "modulus_projection_",
    "project_modulus",
    "object_keep",
    "project_object",
]

_EPS = 1e-30


@dataclass
class FourierData:
    """Measured amplitudes in origin-first order, ready for the inner loop.

    Attributes
    ----------
    amplitude : Tensor, float32
        :math:`\\sqrt{\\max(I, 0)}` on the grid (0 where not measured).
    measured : Tensor, float32
        1 on pixels the modulus projection constrains (valid and not free), else 0.
    unmeasured : Tensor, float32
        ``1 - measured``.
    amp_measured : Tensor, float32
        ``amplitude * measured``.
    free_index : Tensor, int64
        Flat indices (into the trailing grid) of the held-out pixels.
    free_amplitude : Tensor, float32
        Their measured amplitudes.
    free_intensity : Tensor, float32
        Their measured intensities (for the free Poisson deviance).
    norm : float
        :math:`\\sum_{measured} a^2`, normalising the Fourier error.
    free_norm : float
        :math:`\\sum_{free} a^2`.
    ndim : int
        Number of grid axes.
    loss_weight : Tensor, float32
        ``measured / norm``, flattened (the Fourier error is one matrix-vector product).
    role : Tensor, uint8
        Flattened: 1 on measured pixels, 2 on held-out ones, 0 elsewhere (the fused
        loops of :mod:`doubledip.classical.fused` read this instead of the masks).
    """

    amplitude: torch.Tensor
    measured: torch.Tensor
    unmeasured: torch.Tensor
    amp_measured: torch.Tensor
    free_index: torch.Tensor
    free_amplitude: torch.Tensor
    free_intensity: torch.Tensor
    norm: float
    free_norm: float
    ndim: int
    loss_weight: torch.Tensor | None = None
    role: torch.Tensor | None = None

    def __post_init__(self):
        if self.loss_weight is None:
            self.loss_weight = (self.measured / max(self.norm, _EPS)).reshape(-1)
        if self.role is None:
            self.role = (self.measured.reshape(-1) > 0).to(torch.uint8)
            self.role[self.free_index] = 2

    @functools.cached_property
    def loop_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For the fused CPU loops: the flat amplitudes and ``role`` as NumPy views (CPU
        only), and the factors normalising the two errors, ``[1 / norm, 1 / free_norm]``
        (NaN for the second when no pixel is held out)."""
        free_scale = 1 / max(self.free_norm, _EPS) if self.free_index.numel() else np.nan
        scale = np.array([1 / max(self.norm, _EPS), free_scale])
        return self.amplitude.numpy().reshape(-1), self.role.numpy(), scale

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.amplitude.shape)


def prepare_data(intensity: np.ndarray, valid: np.ndarray, free: np.ndarray, *, device) -> FourierData:
    """Move a centred pattern to the device in origin-first order.

    Parameters
    ----------
    intensity : ndarray
        Pattern in detector convention (zero frequency at ``N // 2``).
    valid : ndarray of bool
        Measured pixels (the complement of the file's mask).
    free : ndarray of bool
        Held-out pixels (a subset of ``valid``), excluded from the projections.
    device : str or torch.device
    """
    ndim = intensity.ndim
    intensity = fft.uncentre(np.maximum(np.asarray(intensity, dtype=np.float32), 0), ndim)
    valid = fft.uncentre(np.asarray(valid, dtype=bool), ndim)
    free = fft.uncentre(np.asarray(free, dtype=bool), ndim) & valid
    constrained = valid & ~free
    amplitude = np.sqrt(intensity) * valid
    free_flat = np.flatnonzero(free)

    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.ascontiguousarray(a), device=device, dtype=dtype)

    measured = constrained.astype(np.float32)
    return FourierData(
        amplitude=t(amplitude),
        measured=t(measured),
        unmeasured=t(1.0 - measured),
        amp_measured=t(amplitude * measured),
        free_index=t(free_flat, torch.int64),
        free_amplitude=t(amplitude.reshape(-1)[free_flat]),
        free_intensity=t(intensity.reshape(-1)[free_flat]),
        norm=float(np.sum(amplitude.astype(np.float64) ** 2 * measured)),
        free_norm=float(np.sum(amplitude.reshape(-1)[free_flat].astype(np.float64) ** 2)),
        ndim=ndim,
    )


def _squared_modulus(X: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # |X|^2 from the interleaved real view: faster than torch.abs on CPU
    xr = torch.view_as_real(X)
    torch.mul(xr[..., 0], xr[..., 0], out=out)
    return out.addcmul_(xr[..., 1], xr[..., 1])


def fourier_errors(X: torch.Tensor, data: FourierData, *, out: torch.Tensor | None = None):
    r"""Normalised Fourier errors of the fields ``X`` (batch of Fourier transforms).

    Returns ``(loss, free_loss)``, each of shape ``X.shape[:-ndim]``:

    .. math:: \text{loss} = \frac{\sum_{k \in M} (|X_k| - a_k)^2}{\sum_{k\in M} a_k^2},
              \qquad \text{free} = \text{the same over the held-out pixels}

    (``free_loss`` is NaN when no pixel is held out).  ``out`` is an optional
    float scratch array shaped like ``X``.
    """
    dims = tuple(range(-data.ndim, 0))
    if out is None:
        out = torch.empty(X.shape, dtype=data.amplitude.dtype, device=X.device)
    residual = _squared_modulus(X, out).sqrt_().sub_(data.amp_measured).mul_(data.measured)
    loss = torch.linalg.vector_norm(residual, dim=dims).square_() / max(data.norm, _EPS)
    return loss, free_errors(X, data)


def free_errors(X: torch.Tensor, data: FourierData) -> torch.Tensor:
    """Normalised amplitude error on the held-out pixels, one value per batch entry."""
    if data.free_index.numel() == 0:
        return torch.full(X.shape[: X.ndim - data.ndim], float("nan"), device=X.device)
    flat = X.reshape(X.shape[: X.ndim - data.ndim] + (-1,))
    values = flat.index_select(-1, data.free_index).abs()
    return (values - data.free_amplitude).square_().sum(-1) / max(data.free_norm, _EPS)


def free_poisson(X: torch.Tensor, data: FourierData) -> torch.Tensor:
    r"""Mean Poisson deviance :math:`\mu - I - I\log(\mu/I)`, :math:`\mu = |X|^2`, on the held-out pixels."""
    if data.free_index.numel() == 0:
        return torch.full(X.shape[: X.ndim - data.ndim], float("nan"), device=X.device)
    flat = X.reshape(X.shape[: X.ndim - data.ndim] + (-1,))
    mu = flat.index_select(-1, data.free_index).abs().square() + 1e-6
    i = data.free_intensity
    log_term = torch.where(i > 0, i * torch.log(mu / i.clamp_min(1e-6)), torch.zeros_like(mu))
    return (mu - i - log_term).mean(-1)


def modulus_projection_(X: torch.Tensor, data: FourierData, work: tuple[torch.Tensor, torch.Tensor] | None = None):
    """Replace the Fourier fields ``X`` by their projection on the modulus set, in place.

    Parameters
    ----------
    X : Tensor, complex
        Fourier transforms (origin first), shape ``(..., *grid)``.
    data : FourierData
    work : pair of float tensors shaped like ``X``, optional
        Scratch buffers (allocated when not given).

    Returns
    -------
    (loss, free_loss) : Tensors
        The normalised Fourier errors of ``X`` *before* the projection
        (see :func:`fourier_errors`); computing them here costs almost nothing.
    """
    if work is None:
        work = (torch.empty(X.shape, dtype=data.amplitude.dtype, device=X.device),
                torch.empty(X.shape, dtype=data.amplitude.dtype, device=X.device))
    magnitude, scratch = work
    K = X.shape[: X.ndim - data.ndim]
    _squared_modulus(X, magnitude).sqrt_()
    # squared residuals; measured and held-out pixels are summed separately
    torch.sub(magnitude, data.amplitude, out=scratch).square_()
    flat = scratch.view(-1, data.measured.numel())
    loss = torch.mv(flat, data.loss_weight).view(K)
    if data.free_index.numel():
        free_loss = flat.index_select(-1, data.free_index).sum(-1).div_(max(data.free_norm, _EPS)).view(K)
    else:
        free_loss = torch.full(K, float("nan"), device=X.device)
    # ratio = a / |X| on measured pixels and 1 elsewhere
    magnitude.clamp_min_(_EPS)
    torch.addcdiv(data.unmeasured, data.amp_measured, magnitude, out=scratch)
    torch.view_as_real(X).mul_(scratch.unsqueeze(-1))  # no complex copy of the ratio
    return loss, free_loss


def project_modulus(x: torch.Tensor, data: FourierData) -> torch.Tensor:
    """:math:`P_M x` for real-space objects ``x`` (origin first); allocates (tests, one-off use)."""
    X = fft.fft(x, data.ndim)
    modulus_projection_(X, data)
    return fft.ifft(X, data.ndim)


def object_keep(z: torch.Tensor, support: torch.Tensor, *, positivity: bool, real: bool) -> torch.Tensor:
    """Which real and imaginary parts of ``z`` the object projection keeps.

    Returns a float tensor of shape ``z.shape + (2,)`` (1 = keep, 0 = set to 0),
    matching ``torch.view_as_real(z)``: both parts outside the support are
    dropped, the imaginary part of a real object is dropped, and with positivity
    a negative real part is dropped (projection on :math:`\\operatorname{Re} x \\ge 0`).
    """
    keep = torch.empty(z.shape + (2,), dtype=z.real.dtype, device=z.device)
    re = support if not positivity else support & (z.real >= 0)
    keep[..., 0] = re
    keep[..., 1] = support if not real else False
    return keep


def project_object(x: torch.Tensor, support: torch.Tensor, *, positivity: bool = False, real: bool = False) -> torch.Tensor:
    r""":math:`P_S x`: zero outside the support, and the real / positivity constraints inside.

    Parameters
    ----------
    x : Tensor, complex
    support : Tensor of bool, broadcastable to ``x``
    positivity : bool
        Keep only :math:`\max(\operatorname{Re} x, 0)` (and the imaginary part unless ``real``).
    real : bool
        Drop the imaginary part.
    """
    if not positivity and not real:
        return x * support
    keep = object_keep(x, support.expand(x.shape), positivity=positivity, real=real)
    return torch.view_as_complex((torch.view_as_real(x) * keep).contiguous())


def gaussian_transfer(shape: tuple[int, ...], sigma, *, device, rfft: bool = False) -> torch.Tensor:
    r"""Fourier transfer function of a unit-sum Gaussian of width ``sigma`` pixels (origin first).

    .. math:: \hat g(k) = \exp\big(-2\pi^2 \sum_a \sigma_a^2 (k_a/N_a)^2\big)

    ``sigma`` is a number or one value per axis; with ``rfft=True`` the last
    axis is halved for :func:`torch.fft.rfftn`.
    """
    sig = np.broadcast_to(np.asarray(sigma, dtype=np.float64), (len(shape),))
    out = np.zeros((), dtype=np.float64)
    for a, n in enumerate(shape):
        k = np.fft.rfftfreq(n) if (rfft and a == len(shape) - 1) else np.fft.fftfreq(n)
        view = [1] * len(shape)
        view[a] = k.size
        out = out + (-2.0 * math.pi**2 * sig[a] ** 2 * k**2).reshape(view)
    return torch.as_tensor(np.exp(out), dtype=torch.float32, device=device)
