r"""Fused CPU loops for the engine's inner iteration (compiled by Numba).

With torch on the CPU every elementwise operation is one pass over memory, and
the modulus projection alone takes about ten of them; at the grid sizes of CDI
those passes cost as much as the two FFTs.  The two loops here do the same
arithmetic in one pass each, in parallel over chunks of the grid:

* :func:`modulus_projection_` -- for measured pixels
  :math:`X_k \leftarrow a_k X_k / |X_k|` while summing :math:`(|X_k| - a_k)^2`
  per start, and the same sum over the held-out pixels, which like every other
  pixel are left as they are (sums in float64, chunk by chunk in a fixed order,
  so the result does not depend on the thread count);
* :func:`object_update_` -- the object-space step shared by ER, HIO and RAAR:

  .. math:: x \leftarrow \begin{cases} y & \text{where } t = y + c\,(y - x) \text{ satisfies the object constraint} \\
            \alpha x + \gamma y & \text{elsewhere} \end{cases}

  applied to the real and imaginary parts separately, with :math:`c = 0` for ER
  (:math:`\alpha = \gamma = 0`) and HIO (:math:`\alpha = 1, \gamma = -\beta`), and
  :math:`c = 1`, i.e. :math:`t = 2y - x`, for RAAR (:math:`\alpha = \beta,
  \gamma = 1 - 2\beta`).  The constraint is the support, plus
  :math:`\operatorname{Re} \ge 0` with positivity and :math:`\operatorname{Im} = 0`
  for a real object, as in :func:`~doubledip.classical.projections.object_keep`.

The arithmetic is that of :mod:`doubledip.classical.algorithms` (Fienup, Appl.
Opt. 21, 2758 (1982); Luke, Inverse Problems 21, 37 (2005)); only the memory
traffic differs.  Experimental and off by default (the engine's ``fused``
option): faster per iteration in the speed benchmark and, on a real 256^2
pattern from the command line, 10.3 s against 11.5 s, but on 384 noisy
simulated samples its runs succeeded less often than the default's (75.5%
against 82.3%, with single starts succeeding equally often; see
``docs/results.md``).  Numba is an optional dependency (``pip install
doubledip[fast]``): :data:`AVAILABLE` is false without it.  The loops compile
on first use and are cached on disk.

Threads: the loops use as many threads as torch (``torch.get_num_threads()``),
on Numba's default threading layer (OpenMP where present: its launches cost a
fraction of those of Numba's own work queue).  A process forked from one that
has started that thread pool must not use it (GNU OpenMP terminates it), so
such a child -- a worker of a fork-based pool -- runs serial builds of the
same loops.  A lock keeps two Python threads from launching at once.
"""

from __future__ import annotations

import os
import threading

import numpy as np
import torch

try:
    import numba
except ImportError:  # pragma: no cover - numba is optional (doubledip[fast])
    numba = None

__all__ = ["AVAILABLE", "CHUNK", "modulus_projection_", "object_update_"]

AVAILABLE = numba is not None
CHUNK = 16384
"""Pixels per parallel work item (and per partial sum of the Fourier error)."""


_LOCK = threading.Lock()
_POOL_PID: list[int] = []  # the process that started the parallel thread pool

if AVAILABLE:
    _FLAGS = {"reassoc", "nsz", "contract"}  # exact division and square root, summation order free

    def _modulus(X, amplitude, role, partial):  # pragma: no cover - compiled
        K, n = X.shape
        chunks = partial.shape[1]
        for job in numba.prange(K * chunks):
            k, c = job // chunks, job % chunks
            measured, held_out = 0.0, 0.0
            for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
                if role[i]:
                    z = X[k, i]
                    magnitude = np.sqrt(z.real * z.real + z.imag * z.imag)
                    r = magnitude - amplitude[i]
                    if role[i] == 1:
                        measured += r * r
                        X[k, i] = z * (amplitude[i] / max(magnitude, np.float32(1e-30)))
                    else:
                        held_out += r * r
            partial[k, c, 0] = measured
            partial[k, c, 1] = held_out

    def _update(x, y, support, alpha, gamma, reflect, positivity, real):  # pragma: no cover - compiled
        K, n = x.shape
        chunks = (n + CHUNK - 1) // CHUNK
        for job in numba.prange(K * chunks):
            k, c = job // chunks, job % chunks
            for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
                yv = y[k, i]
                xv = x[k, i]
                if support[k, i]:
                    re_keep = True
                    if positivity:
                        re_keep = yv.real + reflect * (yv.real - xv.real) >= 0
                    re = yv.real if re_keep else alpha * xv.real + gamma * yv.real
                    im = alpha * xv.imag + gamma * yv.imag if real else yv.imag
                    x[k, i] = complex(re, im)
                else:
                    x[k, i] = alpha * xv + gamma * yv

    _PARALLEL = {f.__name__: numba.njit(f, parallel=True, fastmath=_FLAGS, cache=True, nogil=True)
                 for f in (_modulus, _update)}
    # not cached: the on-disk cache is keyed by the function, and would hand back the parallel build
    _SERIAL = {f.__name__: numba.njit(f, fastmath=_FLAGS, nogil=True) for f in (_modulus, _update)}


def _loop(name: str):
    """The parallel build of a loop, or the serial one in a process forked from the pool's owner."""
    if not _POOL_PID:
        _POOL_PID.append(os.getpid())
    if os.getpid() != _POOL_PID[0]:
        return _SERIAL[name]
    numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
    return _PARALLEL[name]


def modulus_projection_(X: torch.Tensor, data):
    r"""Project the Fourier fields ``X`` on the modulus set in place, as
    :func:`doubledip.classical.projections.modulus_projection_` does, in one pass.

    Parameters
    ----------
    X : Tensor, complex64, CPU, contiguous, shape ``(..., *grid)``
    data : :class:`~doubledip.classical.projections.FourierData`
        Its ``amplitude`` and ``role`` (1 projected, 2 held out, 0 neither).

    Returns
    -------
    (loss, free_loss) : Tensors, float32, shape ``X.shape[:-ndim]``
        The normalised Fourier errors of ``X`` *before* the projection, on the
        measured and on the held-out pixels (NaN when none is held out).
    """
    batch = X.shape[: X.ndim - data.ndim]
    flat = X.numpy().reshape(-1, data.amplitude.numel())
    partial = np.empty((flat.shape[0], -(-flat.shape[1] // CHUNK), 2), dtype=np.float64)
    with _LOCK:
        _loop("_modulus")(flat, data.amplitude.numpy().reshape(-1), data.role.numpy(), partial)
    norms = [max(data.norm, 1e-30), max(data.free_norm, 1e-30) if data.free_index.numel() else np.nan]
    sums = torch.from_numpy((partial.sum(axis=1) / norms).astype(np.float32))
    return sums[:, 0].reshape(batch), sums[:, 1].reshape(batch)


def object_update_(x: torch.Tensor, y: torch.Tensor, support: torch.Tensor, *, alpha: float, gamma: float,
                   reflect: bool = False, positivity: bool = False, real: bool = False) -> torch.Tensor:
    r"""``x <- y`` where the test point satisfies the object constraint, else ``alpha x + gamma y`` (in place).

    The test point is :math:`y` (``reflect=False``: ER, HIO) or :math:`2y - x`
    (``reflect=True``: RAAR); see the module docstring.  ``x``, ``y`` are complex64
    CPU tensors of one shape, ``support`` a bool tensor of the same shape.
    """
    n = support[0].numel() if support.ndim else 1
    arrays = (x.numpy().reshape(-1, n), y.numpy().reshape(-1, n), support.numpy().reshape(-1, n))
    with _LOCK:
        _loop("_update")(*arrays, np.float32(alpha), np.float32(gamma), np.float32(1.0 if reflect else 0.0),
                         bool(positivity), bool(real))
    return x
