"""Fresnel-type model: the object times a quadratic phase chirp, then the far field."""

from __future__ import annotations

import numpy as np
import torch

from doubledip import fft
from doubledip.physics.farfield import FarField

__all__ = ["Fresnel"]


class Fresnel(FarField):
    r"""Object multiplied by a known quadratic phase, then Fourier transformed.

    .. math:: A(x) = F\left(P x \cdot e^{i \pi C \lVert r \rVert^2}\right)

    with :math:`r` the centred pixel coordinates of the pattern grid and
    :math:`C` the chirp rate (radians / pi per pixel squared).  A chirp applied
    *after* :math:`F` would cancel in :math:`|A x|^2`; applied before, it breaks
    the translation and twin ambiguities of the far field, leaving only a
    global phase, so plain least squares usually solves it (near-field /
    Fresnel CDI: Williams et al., PRL 97, 025506 (2006)).

    Parameters
    ----------
    pattern_shape, object_shape
        As for :class:`~doubledip.physics.farfield.FarField`.
    chirp : float
        :math:`C`; the phase at the grid edge is ``pi * C * (N/2)**2``.
        Default ``4 / N**2`` over the largest axis (a few windings in the box).
    """

    symmetries = ("phase",)

    def __init__(self, pattern_shape, object_shape=None, *, chirp=None, device="cpu"):
        super().__init__(pattern_shape, object_shape, device=device)
        if chirp is None:
            chirp = 4.0 / max(self.data_shape) ** 2
        self.chirp_rate = float(chirp)
        r2 = sum(g.astype(np.float64) ** 2 for g in fft.frequency_grid(self.data_shape))
        phase = np.pi * self.chirp_rate * r2
        self.chirp = torch.as_tensor(np.exp(1j * phase).astype(np.complex64), device=self.device)

    def _forward(self, x):
        return fft.cfft(self.pad(x) * self.chirp.to(x.dtype), self.ndim)

    def _adjoint(self, y):
        return self.crop(fft.icfft(y, self.ndim) * self.chirp.to(y.dtype).conj())
