"""Gaussian measurements: ``y_i = <g_i, x>`` with i.i.d. complex Gaussian ``g_i``."""

from __future__ import annotations

import numpy as np
import torch

from doubledip.physics.base import ForwardModel

__all__ = ["Gaussian"]


class Gaussian(ForwardModel):
    r"""Random complex Gaussian measurements of a complex object.

    .. math:: A(x)_i = \langle g_i, x\rangle = \sum_j g_{ij}\, x_j,
              \qquad g_{ij} \sim \mathcal{CN}(0, 1/m)

    so that :math:`E\lVert A x\rVert^2 = \lVert x\rVert^2`.  With
    :math:`m \gtrsim 4 n` measurements the intensities determine :math:`x` up
    to a global phase and gradient descent from a spectral start solves it
    (Candes, Li & Soltanolkotabi, Wirtinger flow, IEEE TIT 61, 1985 (2015)).

    Parameters
    ----------
    object_shape : tuple of int
        Shape of the object; any number of axes.
    m : int
        Number of measurements (``data_shape == (m,)``).
    seed : int
        Seed of the measurement matrix (recorded as ``self.seed``).
    """

    symmetries = ("phase",)

    def __init__(self, object_shape, m, *, seed=0, device="cpu"):
        self.object_shape = tuple(int(s) for s in object_shape)
        self.data_shape = (int(m),)
        self.ndim = len(self.object_shape)
        self.seed = int(seed)
        self.device = torch.device(device)
        n = int(np.prod(self.object_shape))
        rng = np.random.default_rng(self.seed)
        g = rng.standard_normal((m, n)) + 1j * rng.standard_normal((m, n))
        self.matrix = torch.as_tensor((g / np.sqrt(2 * m)).astype(np.complex64), device=self.device)

    def _flat(self, x):
        return x.reshape(x.shape[: x.ndim - self.ndim] + (-1,))

    def _forward(self, x):
        return self._flat(x) @ self.matrix.to(x.dtype).T

    def _adjoint(self, y):
        out = y @ self.matrix.to(y.dtype).conj()
        return out.reshape(y.shape[:-1] + self.object_shape)
