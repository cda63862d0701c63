"""The one Fourier convention of doubledip.

Conventions
-----------
* Transforms are unitary (``norm="ortho"``), so Parseval holds exactly:
  ``||F x|| = ||x||``.
* Transforms act on the **last** ``ndim`` axes; leading axes are batch axes
  (restarts, channels).
* Files and users see arrays *centred*: in Fourier space the zero frequency
  sits at index ``N // 2`` on every axis (the detector convention), and in real
  space the origin sits at index ``N // 2`` too, so an object centred in its
  array has a pattern centred in its array.
* Solvers may work in *origin-first* order (zero frequency / origin at index 0)
  to avoid shifting in inner loops; :func:`uncentre` and :func:`centre`
  convert.  Nothing outside this module shifts arrays by half their size.

Every function accepts a :class:`numpy.ndarray` or a :class:`torch.Tensor` and
returns the same kind.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["fft", "ifft", "centre", "uncentre", "cfft", "icfft", "frequency_grid"]


def _axes(ndim: int, array) -> tuple[int, ...]:
    if ndim < 1 or ndim > array.ndim:
        raise ValueError(f"ndim={ndim} does not fit an array with {array.ndim} axes")
    return tuple(range(-ndim, 0))


def fft(x, ndim: int):
    r"""Unitary discrete Fourier transform over the last ``ndim`` axes, origin first.

    .. math:: (Fx)_k = N^{-d/2} \sum_j x_j \, e^{-2\pi i\, k\cdot j / N}

    Parameters
    ----------
    x : ndarray or Tensor
        Array in origin-first order.
    ndim : int
        Number of trailing axes transformed (2 or 3 for images and volumes).
    """
    axes = _axes(ndim, x)
    if isinstance(x, torch.Tensor):
        return torch.fft.fftn(x, dim=axes, norm="ortho")
    return np.fft.fftn(x, axes=axes, norm="ortho")


def ifft(x, ndim: int):
    """Inverse of :func:`fft` (its adjoint, since the transform is unitary)."""
    axes = _axes(ndim, x)
    if isinstance(x, torch.Tensor):
        return torch.fft.ifftn(x, dim=axes, norm="ortho")
    return np.fft.ifftn(x, axes=axes, norm="ortho")


def centre(x, ndim: int):
    """Origin-first order -> centred order (origin moves to index ``N // 2``)."""
    axes = _axes(ndim, x)
    if isinstance(x, torch.Tensor):
        return torch.fft.fftshift(x, dim=axes)
    return np.fft.fftshift(x, axes=axes)


def uncentre(x, ndim: int):
    """Centred order -> origin-first order; the exact inverse of :func:`centre`
    for even and odd sizes."""
    axes = _axes(ndim, x)
    if isinstance(x, torch.Tensor):
        return torch.fft.ifftshift(x, dim=axes)
    return np.fft.ifftshift(x, axes=axes)


def cfft(x, ndim: int):
    """Centred unitary transform: centred real space -> detector convention.

    ``cfft(x) = centre(fft(uncentre(x)))``.  A real, point-symmetric object
    centred at ``N // 2`` has a real transform.
    """
    return centre(fft(uncentre(x, ndim), ndim), ndim)


def icfft(y, ndim: int):
    """Inverse (and adjoint) of :func:`cfft`: detector convention -> centred real space."""
    return centre(ifft(uncentre(y, ndim), ndim), ndim)


def frequency_grid(shape: tuple[int, ...], *, centred: bool = True) -> list[np.ndarray]:
    """Integer coordinates relative to the origin along each axis.

    With ``centred=True`` (detector convention) axis ``a`` holds
    ``i - N_a // 2`` at index ``i``; otherwise the origin-first order of
    :func:`numpy.fft.fftfreq` times ``N_a``.  Returned as open (broadcastable)
    grids.
    """
    grids = []
    for a, n in enumerate(shape):
        if centred:
            g = np.arange(n) - n // 2
        else:
            g = np.fft.fftfreq(n, 1.0 / n).round().astype(int)
        view = [1] * len(shape)
        view[a] = n
        grids.append(g.reshape(view))
    return grids
