"""Common interface of the phase-retrieval forward models.

A forward model ``A`` maps a complex object ``x`` (shape ``object_shape``,
optionally with leading batch axes) to the complex field ``A(x)`` (shape
``data_shape``) measured through its squared modulus.  ``A`` is linear, so
each model exposes its adjoint ``A^H``; :func:`dottest` checks
``<A x, y> = <x, A^H y>``.

Models compute with :mod:`torch` (differentiable, CPU or CUDA).  A NumPy array
given to any method comes back as a NumPy array, so the models also serve at
the NumPy boundary.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

__all__ = ["ForwardModel", "dottest", "as_tensor"]


def as_tensor(x, *, device=None, dtype=None) -> torch.Tensor:
    """``x`` as a tensor (no copy when it already is one on ``device``)."""
    if isinstance(x, torch.Tensor):
        return x.to(device=device or x.device, dtype=dtype or x.dtype)
    return torch.as_tensor(np.asarray(x), device=device, dtype=dtype)


def numpy_boundary(method):
    """Let a tensor method take and return NumPy arrays as well."""

    @functools.wraps(method)
    def wrapper(self, x, *args, **kwargs):
        if isinstance(x, torch.Tensor):
            return method(self, x, *args, **kwargs)
        out = method(self, as_tensor(x, device=self.device), *args, **kwargs)
        return out.detach().cpu().numpy()

    return wrapper


class ForwardModel:
    """Base class: subclasses implement :meth:`_forward` and :meth:`_adjoint`.

    Attributes
    ----------
    object_shape : tuple of int
        Shape of the object the model takes (trailing axes of its input).
    data_shape : tuple of int
        Shape of the field it returns (trailing axes of its output).
    symmetries : tuple of str
        The trivial ambiguities of ``|A x|``: ``"phase"`` always;
        ``"translation"`` and ``"conjugate"`` for the far field.
    """

    object_shape: tuple[int, ...]
    data_shape: tuple[int, ...]
    symmetries: tuple[str, ...] = ("phase",)
    device: torch.device = torch.device("cpu")

    def to(self, device) -> "ForwardModel":
        """Move the model's constant tensors to ``device``; returns ``self``."""
        self.device = torch.device(device)
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor):
                setattr(self, name, value.to(self.device))
        return self

    @numpy_boundary
    def __call__(self, x):
        """The complex field ``A x``."""
        return self._forward(x)

    forward = __call__

    @numpy_boundary
    def adjoint(self, y):
        """The adjoint ``A^H y`` of the linear map."""
        return self._adjoint(y)

    @numpy_boundary
    def amplitude(self, x):
        """The far-field amplitude ``|A x|``."""
        return self._forward(x).abs()

    @numpy_boundary
    def intensity(self, x):
        """The noiseless intensity ``|A x|^2``."""
        return self._forward(x).abs().square()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def dottest(model: ForwardModel, *, seed: int = 0, rtol: float = 1e-4) -> float:
    r"""Check that ``model.adjoint`` is the adjoint of ``model``.

    Draws complex Gaussian ``x`` and ``y`` and compares
    :math:`\langle A x, y\rangle` with :math:`\langle x, A^H y\rangle`
    (the PyLops ``dottest``).  Returns the relative mismatch and raises
    :class:`AssertionError` when it exceeds ``rtol``.
    """
    rng = np.random.default_rng(seed)

    def randc(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex128)

    x = torch.as_tensor(randc(model.object_shape), device=model.device)
    y = torch.as_tensor(randc(model.data_shape), device=model.device)
    lhs = torch.vdot(model(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), model.adjoint(y).flatten())
    mismatch = float((lhs - rhs).abs() / max(float(lhs.abs()), 1e-30))
    if mismatch > rtol:
        raise AssertionError(f"dot test failed: <Ax,y>={complex(lhs)}, <x,A^H y>={complex(rhs)}")
    return mismatch
