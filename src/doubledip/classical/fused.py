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
traffic differs.  The engine uses them by default on the CPU (its ``fused``
option).  Each chunk's loop is written so that it vectorises: no division check
(``error_model="numpy"``), masks as arithmetic and branch-free logic.  On 768
noisy simulated samples the fused and the torch arithmetic succeeded equally
often (see ``docs/results.md``).  Without Numba :data:`AVAILABLE` is false and the
engine runs the torch operations.  The loops compile on first use (a few
seconds) and are cached on disk.

Threads: the loops use as many threads as torch (``torch.get_num_threads()``),
on Numba's default threading layer (OpenMP where present: its launches cost a
fraction of those of Numba's own work queue).  Serial builds of the same
loops run with one thread, on at most two chunks (where a launch costs more
than it saves), and in a process forked from one that has started the thread
pool, which must not use it (GNU OpenMP terminates it) -- a worker of a
fork-based pool.  A lock keeps two Python threads from launching at once.
"""

from __future__ import annotations

import os
import threading
import types

import numpy as np
import torch

try:
    import numba
except ImportError:  # pragma: no cover - a dependency; the engine falls back to torch without it
    numba = None

__all__ = ["AVAILABLE", "CHUNK", "modulus_projection_", "object_update_"]

AVAILABLE = numba is not None
CHUNK = 16384
"""Pixels per parallel work item (and per partial sum of the Fourier error)."""


_LOCK = threading.Lock()
_POOL_PID: list[int] = []  # the process that started the parallel thread pool
_THREADS: dict[int, int] = {}  # Python thread -> thread count last given to Numba

if AVAILABLE:
    _FLAGS = {"reassoc", "nsz", "contract"}  # exact division and square root, summation order free
    # error_model="numpy": no zero-division check, which would keep the loops from vectorising
    _chunk_jit = numba.njit(fastmath=_FLAGS, error_model="numpy", nogil=True, cache=True, inline="never")

    @_chunk_jit
    def _modulus_chunk(X, amplitude, role, out):  # pragma: no cover - compiled
        # X: interleaved float32 view (re, im) of one chunk of one start
        measured, held_out = 0.0, 0.0
        for i in range(amplitude.shape[0]):
            re, im = X[2 * i], X[2 * i + 1]
            magnitude = np.sqrt(re * re + im * im)
            a = amplitude[i]
            r = np.float64((magnitude - a) * (magnitude - a))
            m = np.float32(role[i] == 1)
            measured += m * r
            held_out += np.float32(role[i] == 2) * r
            ratio = m * (a / max(magnitude, np.float32(1e-30))) + (np.float32(1) - m)
            X[2 * i] = re * ratio
            X[2 * i + 1] = im * ratio
        out[0] = measured
        out[1] = held_out

    @_chunk_jit
    def _update_chunk(x, y, support, alpha, gamma, reflect, positivity, real):  # pragma: no cover - compiled
        for i in range(support.shape[0]):
            xr, xi, yr, yi = x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1]
            inside = support[i]
            # bitwise, not short-circuit, logic: branch-free, so the loop vectorises
            keep_re = inside & ((not positivity) | (yr + reflect * (yr - xr) >= 0))
            keep_im = inside & (not real)
            x[2 * i] = yr if keep_re else alpha * xr + gamma * yr
            x[2 * i + 1] = yi if keep_im else alpha * xi + gamma * yi

    def _modulus(X, amplitude, role, scale, partial, errors):  # pragma: no cover - compiled
        n = amplitude.shape[0]
        chunks = partial.shape[1]
        for job in numba.prange(X.shape[0] * chunks):
            k, c = job // chunks, job % chunks
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            _modulus_chunk(X[k, 2 * lo:2 * hi], amplitude[lo:hi], role[lo:hi], partial[k, c])
        for k in range(X.shape[0]):  # the chunks' sums in a fixed order, normalised
            for j in range(2):
                total = 0.0
                for c in range(chunks):
                    total += partial[k, c, j]
                errors[j, k] = total * scale[j]

    def _update(x, y, support, alpha, gamma, reflect, positivity, real):  # pragma: no cover - compiled
        n = support.shape[1]
        chunks = (n + CHUNK - 1) // CHUNK
        for job in numba.prange(x.shape[0] * chunks):
            k, c = job // chunks, job % chunks
            lo, hi = c * CHUNK, min(n, (c + 1) * CHUNK)
            _update_chunk(x[k, 2 * lo:2 * hi], y[k, 2 * lo:2 * hi], support[k, lo:hi], alpha, gamma, reflect,
                          positivity, real)

    def _renamed(f, suffix):
        # the on-disk cache is keyed by the function's name, so the serial build needs its own
        g = types.FunctionType(f.__code__, f.__globals__, f.__name__ + suffix)
        g.__qualname__ = f.__qualname__ + suffix
        return g

    _PARALLEL = {f.__name__: numba.njit(f, parallel=True, fastmath=_FLAGS, cache=True, nogil=True)
                 for f in (_modulus, _update)}
    _SERIAL = {f.__name__: numba.njit(_renamed(f, "_serial"), fastmath=_FLAGS, cache=True, nogil=True)
               for f in (_modulus, _update)}


def _loop(name: str, pixels: int):
    """The build of a loop to run on ``pixels`` pixels in all.

    Serial for one thread or at most two chunks (a parallel launch costs more than
    it saves there, and far more when another process holds a core), and in a
    process forked from the pool's owner; parallel otherwise.
    """
    if not _POOL_PID:
        _POOL_PID.append(os.getpid())
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if os.getpid() != _POOL_PID[0] or threads == 1 or pixels <= 2 * CHUNK:
        return _SERIAL[name]
    if _THREADS.get(threading.get_ident()) != threads:  # Numba's setting is per calling thread
        numba.set_num_threads(threads)
        _THREADS[threading.get_ident()] = threads
    return _PARALLEL[name]


def modulus_projection_(X: torch.Tensor, data):
    r"""Project the Fourier fields ``X`` on the modulus set in place, as
    :func:`doubledip.classical.projections.modulus_projection_` does, in one pass.

    Parameters
    ----------
    X : Tensor, complex64, CPU, contiguous, shape ``(..., *grid)``
    data : :class:`~doubledip.classical.projections.FourierData`
        Its ``loop_arrays``: amplitudes, ``role`` (1 projected, 2 held out, 0 neither)
        and the two normalisations.

    Returns
    -------
    (loss, free_loss) : Tensors, float32, shape ``X.shape[:-ndim]``
        The normalised Fourier errors of ``X`` *before* the projection, on the
        measured and on the held-out pixels (NaN when none is held out).
    """
    batch = X.shape[: X.ndim - data.ndim]
    amplitude, role, scale = data.loop_arrays
    flat = X.numpy().reshape(-1, amplitude.size).view(np.float32)
    partial = np.empty((flat.shape[0], -(-amplitude.size // CHUNK), 2), dtype=np.float64)
    errors = torch.empty((2, flat.shape[0]))
    with _LOCK:
        _loop("_modulus", flat.size // 2)(flat, amplitude, role, scale, partial, errors.numpy())
    return errors[0].reshape(batch), errors[1].reshape(batch)


def object_update_(x: torch.Tensor, y: torch.Tensor, support: torch.Tensor, *, alpha: float, gamma: float,
                   reflect: bool = False, positivity: bool = False, real: bool = False) -> torch.Tensor:
    r"""``x <- y`` where the test point satisfies the object constraint, else ``alpha x + gamma y`` (in place).

    The test point is :math:`y` (``reflect=False``: ER, HIO) or :math:`2y - x`
    (``reflect=True``: RAAR); see the module docstring.  ``x``, ``y`` are complex64
    CPU tensors of one shape, ``support`` a bool tensor of the same shape.
    """
    n = support[0].numel() if support.ndim else 1
    arrays = (x.numpy().reshape(-1, n).view(np.float32), y.numpy().reshape(-1, n).view(np.float32),
              support.numpy().reshape(-1, n))
    with _LOCK:
        _loop("_update", support.numel())(*arrays, np.float32(alpha), np.float32(gamma),
                                          np.float32(1.0 if reflect else 0.0), bool(positivity), bool(real))
    return x
