"""Far-field (Fraunhofer) diffraction: ``A(x) = F(pad(x))``."""

from __future__ import annotations

import math

import torch

from doubledip import fft
from doubledip.physics.base import ForwardModel, numpy_boundary

__all__ = ["FarField", "box_slices"]


def box_slices(pattern_shape, object_shape) -> tuple[slice, ...]:
    """Slices that place a centred box of ``object_shape`` in ``pattern_shape``.

    The box's own centre index ``n // 2`` lands on the grid centre ``N // 2``
    on every axis, so centring is exact for even and odd sizes alike.
    """
    if len(pattern_shape) != len(object_shape):
        raise ValueError(f"object box {object_shape} and pattern {pattern_shape} differ in ndim")
    out = []
    for N, n in zip(pattern_shape, object_shape):
        if not 1 <= n <= N:
            raise ValueError(f"object box size {n} must lie in 1..{N} (pattern size)")
        start = N // 2 - n // 2
        out.append(slice(start, start + n))
    return tuple(out)


class FarField(ForwardModel):
    r"""Fraunhofer diffraction of an object confined to a centred box.

    .. math:: A(x) = F\,P\,x, \qquad I = |A(x)|^2

    where :math:`P` zero-pads the object box of size ``n`` into the centred
    pattern grid of size ``N`` and :math:`F` is the unitary centred DFT of
    :mod:`doubledip.fft` (zero frequency at index ``N // 2``).  The adjoint is
    :math:`P^T F^{H}` (inverse transform, then crop).  Oversampling ``N / n``
    of 2 per axis, the default ``n = ceil(N / 2)``, is the information limit
    for a complex object (Miao, Sayre & Chapman, JOSA A 15, 1662 (1998)).

    The intensity is unchanged by a global phase, a translation of the object
    and its conjugate flip ``x(r) -> conj(x(-r))``.

    Parameters
    ----------
    pattern_shape : tuple of int
        Detector grid ``(Y, X)`` or ``(Z, Y, X)``; any sizes, odd included.
    object_shape : tuple of int, optional
        Object box, default ``ceil(N / 2)`` per axis.
    """

    symmetries = ("phase", "translation", "conjugate")

    def __init__(self, pattern_shape, object_shape=None, *, device="cpu"):
        self.data_shape = tuple(int(s) for s in pattern_shape)
        if object_shape is None:
            object_shape = tuple(math.ceil(s / 2) for s in self.data_shape)
        self.object_shape = tuple(int(s) for s in object_shape)
        self.ndim = len(self.data_shape)
        if self.ndim not in (1, 2, 3):
            raise ValueError(f"pattern must be 1D, 2D or 3D, got shape {self.data_shape}")
        self.box = box_slices(self.data_shape, self.object_shape)
        self.device = torch.device(device)

    def _index(self):
        return (Ellipsis,) + self.box

    @numpy_boundary
    def pad(self, x):
        """Zero-pad an object box into the centred pattern grid (batch axes kept)."""
        out = x.new_zeros(x.shape[: x.ndim - self.ndim] + self.data_shape)
        out[self._index()] = x
        return out

    @numpy_boundary
    def crop(self, x):
        """The object box of a pattern-grid array (the adjoint of :meth:`pad`)."""
        return x[self._index()]

    def _forward(self, x):
        return fft.cfft(self.pad(x), self.ndim)

    def _adjoint(self, y):
        return self.crop(fft.icfft(y, self.ndim))
