"""Plain gradient descent on amplitude least squares, for any forward model.

The reference point of the "three settings" comparison: with random (Gaussian)
or chirped (Fresnel) measurements this simple method recovers the object from a
random start; with the far field it stalls in the twin/translation-ambiguous
landscape, which is what the priors and projection algorithms are for.
"""

from __future__ import annotations

import numpy as np
import torch

from doubledip.physics.base import ForwardModel, as_tensor

__all__ = ["gradient_descent", "operator_norm"]


def operator_norm(model: ForwardModel, *, iterations: int = 30, seed: int = 0) -> float:
    r"""Largest singular value :math:`\lVert A\rVert_2` by power iteration on :math:`A^H A`."""
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(model.object_shape, generator=gen, dtype=torch.complex64).to(model.device)
    sigma = 0.0
    for _ in range(iterations):
        x = model.adjoint(model(x))
        sigma = float(torch.linalg.vector_norm(x))
        x = x / max(sigma, 1e-30)
    return float(np.sqrt(sigma))


def gradient_descent(
    model: ForwardModel,
    intensity,
    mask=None,
    *,
    iterations: int = 500,
    step: float | None = None,
    seed: int = 0,
    x0=None,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Minimise amplitude least squares by plain gradient descent from a random start.

    .. math:: L(x) = \tfrac12 \sum_{k \in M} \left(|(Ax)_k| - \sqrt{I_k}\right)^2, \qquad
              x \leftarrow x - \mu\, A^H\!\left[\mathbb{1}_M\left(Ax - \sqrt{I}\,\frac{Ax}{|Ax|}\right)\right]

    (the Wirtinger gradient; "amplitude flow", Wang, Giannakis & Eldar, IEEE TIT
    64, 773 (2018)).  The step defaults to :math:`0.9 / \lVert A\rVert^2`, which
    for a unitary far-field model makes every step an error-reduction step
    without a support constraint.

    Parameters
    ----------
    model : ForwardModel
        Any model of :mod:`doubledip.physics`.
    intensity : ndarray
        Measured intensity of shape ``model.data_shape``.
    mask : ndarray, optional
        Nonzero = unmeasured pixel (free in the loss).
    iterations : int
        Number of gradient steps.
    step : float, optional
        Step size :math:`\mu`.
    seed : int
        Seed of the random complex Gaussian start, scaled to the data norm.
    x0 : ndarray, optional
        Start instead of the random one.

    Returns
    -------
    object : ndarray, complex64
        The estimate, of shape ``model.object_shape``.
    history : ndarray
        :math:`L(x) / \sum_M I` per iteration.
    """
    device = model.device
    b = as_tensor(np.sqrt(np.maximum(np.asarray(intensity, np.float32), 0)), device=device)
    valid = torch.ones_like(b) if mask is None else as_tensor((np.asarray(mask) == 0).astype(np.float32), device=device)
    if step is None:
        step = 0.9 / operator_norm(model, seed=seed) ** 2
    if x0 is None:
        gen = torch.Generator().manual_seed(int(seed))
        x = torch.randn(model.object_shape, generator=gen, dtype=torch.complex64).to(device)
        x = x * (torch.linalg.vector_norm(b * valid) / torch.linalg.vector_norm(x))
    else:
        x = as_tensor(np.asarray(x0, np.complex64), device=device)
    scale = float((b.square() * valid).sum())
    history = np.empty(iterations)
    for it in range(iterations):
        field = model(x)
        amp = field.abs()
        residual = valid * (field - b * field / amp.clamp_min(1e-12))
        history[it] = 0.5 * float((valid * (amp - b).square()).sum()) / scale
        x = x - step * model.adjoint(residual)
    return x.cpu().numpy().astype(np.complex64), history
