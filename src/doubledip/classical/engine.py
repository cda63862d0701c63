r"""The classical phasing engine: a state machine over a batch of random starts.

:class:`Engine` holds the iterates of ``K`` starts as one tensor of shape
``(K, *grid)`` (complex64, origin-first order, on CPU or CUDA), their supports,
the prepared data and the history.  ``step(name)`` applies one operation of
:data:`~doubledip.classical.algorithms.OPERATORS`; ``run(recipe, callback)``
applies a whole recipe.  :meth:`Engine.result` picks the best start by its
free error and returns a :class:`~doubledip.result.Result` in the file
conventions (centred, global phase fixed).

Memory per start in the HIO/ER/RAAR loop, in complex64 pattern-sized arrays:

* with the fused CPU loops (the default on the CPU, ``fused=True``,
  :mod:`doubledip.classical.fused`): the iterate, its Fourier transform (a
  temporary, reused in place for the inverse) and the support as bool, i.e.
  2.125 arrays;
* with torch operations (CUDA, or ``fused=False``): the same plus two float32
  scratch arrays, i.e. 3.125 arrays (plus the inverse transform's own array on
  a device where it cannot run in place).

DM and OSS add one array, the shrink-wrap guard one bool array.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import Callable

import numpy as np
import torch

from doubledip import fft
from doubledip.classical import fused
from doubledip.classical.algorithms import OPERATORS
from doubledip.classical.freepixels import free_islands
from doubledip.classical.options import ClassicalOptions
from doubledip.classical.projections import (
    fourier_errors,
    free_poisson,
    modulus_projection_,
    prepare_data,
    project_object,
)
from doubledip.classical.recipe import ITERATIONS, Recipe, parse
from doubledip.classical.support import SupportGuard, autocorrelation_support, box_support
from doubledip.postprocess import average_aligned
from doubledip.result import Result

__all__ = ["Engine", "centre_object"]

log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=None)
def _inplace_fft_ok(device_type: str) -> bool:
    """Whether ``torch.fft.ifftn(X, out=X)`` is exact on this device (saves one array per start)."""
    device = torch.device(device_type)
    gen = torch.Generator().manual_seed(0)
    X = torch.randn((2, 6, 10), generator=gen, dtype=torch.complex64).to(device)
    ref = torch.fft.ifftn(X, dim=(-2, -1), norm="ortho")
    torch.fft.ifftn(X, dim=(-2, -1), norm="ortho", out=X)
    return bool(torch.allclose(X, ref, rtol=1e-5, atol=1e-6))


def centre_object(obj: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Centre an origin-first object and fix its global phase (file conventions).

    The circular centre of mass of :math:`|x|` on the support,
    :math:`c_a = \frac{N_a}{2\pi}\arg\sum_r |x_r| e^{2\pi i r_a / N_a}`, moves to
    the grid centre ``N // 2`` by an integer roll (periodic, so an object wrapped
    around the edges is handled), and the object is multiplied by
    :math:`e^{-i\arg\sum_S x}` so that its amplitude-weighted mean phase over
    the support is 0.  Returns ``(object, support)`` in centred order.
    """
    ndim = obj.ndim
    weight = np.abs(obj) * support
    shifts = []
    for a, n in enumerate(obj.shape):
        r = np.arange(n).reshape([n if i == a else 1 for i in range(ndim)])
        moment = np.sum(weight * np.exp(2j * np.pi * r / n))
        centre = np.angle(moment) * n / (2 * np.pi) if abs(moment) > 0 else 0.0
        shifts.append(-int(np.round(centre)))
    axes = tuple(range(ndim))
    obj = fft.centre(np.roll(obj, shifts, axis=axes), ndim)
    support = fft.centre(np.roll(support, shifts, axis=axes), ndim)
    total = np.sum(obj * support)
    if abs(total) > 0:
        obj = obj * (np.conj(total) / abs(total))
    return obj.astype(np.complex64), support.astype(bool)


class Curves:
    """Per-iteration values of every start, rows of one growing ``(capacity, starts)`` float tensor.

    Keeping each iteration's small result tensor alive instead leaves one small
    block after every large temporary freed by the FFTs, and the allocator then
    cannot reuse them: the heap grew by a pattern-sized array per iteration.
    """

    def __init__(self, starts: int, device):
        self.values = torch.empty((64, starts), device=device)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def append(self, value: torch.Tensor) -> None:
        if self.count == len(self.values):
            grown = torch.empty((2 * len(self.values), self.values.shape[1]), device=self.values.device)
            grown[: self.count] = self.values
            self.values = grown
        self.values[self.count] = value
        self.count += 1

    def last(self) -> torch.Tensor:
        return self.values[self.count - 1]

    def numpy(self) -> np.ndarray:
        """``(starts, iterations)`` float64."""
        return self.values[: self.count].T.detach().cpu().double().numpy()


class Engine:
    """Classical phase retrieval on a batch of random starts.

    Parameters
    ----------
    intensity : ndarray
        Pattern in detector convention (zero frequency at ``N // 2``), 1 to 3 axes.
    mask : ndarray, optional
        Nonzero = unmeasured pixel (free in every projection).
    options : ClassicalOptions
    seed : int
        Seeds the held-out pixels and every start.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``...
    support : ndarray of bool, optional
        Initial support in centred order, shape ``grid`` or ``(K, *grid)``;
        default from ``options.support``.
    start_indices : sequence of int, optional
        Which starts to run (default ``range(options.starts)``).  Start ``k``
        draws its random phases from ``SeedSequence(seed, spawn_key=(1, k))``,
        so a batch equals the same starts run one by one.

    Attributes
    ----------
    x : Tensor, complex64, shape ``(K, *grid)``
        Current iterates, origin first.
    support : Tensor of bool, shape ``(K, *grid)``
        Current supports, origin first.
    fused : bool
        Whether the inner loop runs the fused CPU loops of :mod:`doubledip.classical.fused`.
    iteration : int
        Iterations done (``SW`` does not count).
    """

    def __init__(self, intensity, mask=None, *, options: ClassicalOptions | None = None, seed: int = 0,
                 device="cpu", support=None, start_indices=None):
        t0 = time.perf_counter()
        self.options = options if options is not None else ClassicalOptions()
        self.seed = int(seed)
        self.device = torch.device(device)
        intensity = np.asarray(intensity, dtype=np.float32)
        self.shape = intensity.shape
        self.ndim = intensity.ndim
        self.dims = tuple(range(-self.ndim, 0))
        valid = np.ones(self.shape, bool) if mask is None else (np.asarray(mask) == 0)
        valid &= np.isfinite(intensity)
        intensity = np.where(valid, intensity, 0).astype(np.float32)
        free_rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(0,)))
        self.free = free_islands(valid, self.options.free_fraction, radius=self.options.free_island, rng=free_rng)
        self.data = prepare_data(intensity, valid, self.free, device=self.device)
        self.start_indices = list(range(self.options.starts) if start_indices is None else start_indices)
        self.starts = len(self.start_indices)
        self.constrained = self.options.positivity or self.options.real
        self.inplace = _inplace_fft_ok(self.device.type)
        self.fused = bool(self.options.fused and self.device.type == "cpu" and fused.AVAILABLE)
        self._buffers: dict[str, torch.Tensor] = {}
        self.set_support(self._initial_support(support))
        self.guard = self._new_guard()
        self.initial_support_fraction = float(self.support_size[0]) / math.prod(self.shape)
        self.x = self._random_starts()
        self.iteration = 0
        self.sw_done, self.sw_total = 0, 0
        self.oss_done, self.oss_total = 0, 0
        self.oss_best_loss = None
        self._oss_filters: dict[int, torch.Tensor] = {}
        self._loss = Curves(self.starts, self.device)
        self._free = Curves(self.starts, self.device)
        self._size = Curves(self.starts, self.device)
        self.timings = {"setup": time.perf_counter() - t0, "iterations": 0.0}

    @classmethod
    def from_measurement(cls, measurement, **kwargs) -> "Engine":
        """An engine for an :class:`doubledip.io.Measurement` (its intensity and mask)."""
        return cls(measurement.intensity, measurement.mask, **kwargs)

    # -- set-up -------------------------------------------------------------------------

    def _new_guard(self) -> SupportGuard:
        o = self.options
        return SupportGuard(torch.full((self.starts,), o.sw_threshold, device=self.device),
                            max_fraction=o.guard_max_fraction, loss_ratio=o.guard_loss_ratio,
                            loss_tol=o.guard_loss_tol, backoff=o.sw_backoff)

    def _initial_support(self, support) -> torch.Tensor:
        o = self.options
        if support is not None:
            s = np.asarray(support, dtype=bool)
            if s.shape[-self.ndim:] != self.shape:
                raise ValueError(f"support shape {s.shape} does not match the pattern {self.shape}")
            s = torch.as_tensor(np.ascontiguousarray(fft.uncentre(s, self.ndim)), device=self.device)
        elif o.support == "box":
            s = box_support(self.shape, o.box_fraction, device=self.device)
        else:
            # held-out pixels count here: holes in the pattern would spread a background over the
            # autocorrelation, and a coarse initial support leaks next to nothing about them
            valid = (self.data.amplitude > 0) | (self.data.measured > 0)
            s = autocorrelation_support(self.data.amplitude.square(), valid.float(),
                                        threshold=o.support_threshold, sigma=o.support_sigma)
        return s.expand((self.starts,) + self.shape).clone()

    def _random_starts(self) -> torch.Tensor:
        """``P_S F^{-1}(a e^{i phi})`` with uniform random phases, one seed per start."""
        phases = np.empty((self.starts,) + self.shape, dtype=np.float32)
        for i, k in enumerate(self.start_indices):
            rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(1, int(k))))
            phases[i] = rng.uniform(0.0, 2 * np.pi, size=self.shape)
        phi = torch.as_tensor(phases, device=self.device)
        X = torch.polar(self.data.amp_measured.expand_as(phi), phi)
        x = torch.fft.ifftn(X, dim=self.dims, norm="ortho")  # the fft.ifft convention, batched
        return self.project(x).contiguous()

    # -- pieces the operators use -------------------------------------------------------

    def set_support(self, support: torch.Tensor) -> None:
        """Replace the supports (bool, ``(K, *grid)``, origin first)."""
        self.support = support.to(torch.bool).contiguous()
        self.support_size = self.support.sum(dim=self.dims)

    def buffer(self, name: str, dtype=torch.complex64) -> torch.Tensor:
        """A pattern-sized work array per start, allocated on first use (zeros)."""
        if name not in self._buffers:
            self._buffers[name] = torch.zeros((self.starts,) + self.shape, dtype=dtype, device=self.device)
        return self._buffers[name]

    @property
    def work(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Two float scratch arrays of the torch modulus projection."""
        return self.buffer("work0", torch.float32), self.buffer("work1", torch.float32)

    def transform(self, src: torch.Tensor) -> torch.Tensor:
        """``F src`` as a new array (unitary, origin first, as :func:`doubledip.fft.fft`).

        A new array rather than ``out=`` into a held one: on the CPU the HIO step is
        4-17% faster this way, and peak memory is the same.
        """
        return torch.fft.fftn(src, dim=self.dims, norm="ortho")

    def inverse(self, X: torch.Tensor) -> torch.Tensor:
        """``F^{-1} X``, in place when the device allows it, else into a spare buffer."""
        out = X if self.inplace else self.buffer("inverse")
        torch.fft.ifftn(X, dim=self.dims, norm="ortho", out=out)
        return out

    def fourier(self, src: torch.Tensor):
        """``(P_M src, loss, free_loss)``; the result lives in a work buffer."""
        X = self.transform(src)
        if self.fused:
            loss, free = fused.modulus_projection_(X, self.data)
        else:
            loss, free = modulus_projection_(X, self.data, self.work)
        return self.inverse(X), loss, free

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """The object projection ``P_S x`` (allocates)."""
        return project_object(x, self.support, positivity=self.options.positivity, real=self.options.real)

    def oss_stage(self) -> tuple[int, bool]:
        """Current OSS stage and whether this iteration is the last of its stage."""
        stages = self.options.oss_stages
        total = max(self.oss_total, 1)
        if self.oss_total == 0:  # stepping by hand, no plan: a single stage
            return 0, False
        i = self.oss_done
        self.oss_done += 1
        stage = min(i * stages // total, stages - 1)
        nxt = min((i + 1) * stages // total, stages - 1)
        return stage, (nxt != stage or i + 1 >= total)

    def oss_filter(self, stage: int) -> torch.Tensor:
        """OSS Fourier filter of ``stage``: widths from 2 N to 0.2 N per axis."""
        if stage not in self._oss_filters:
            stages = self.options.oss_stages
            f = 2.0 - 1.8 * stage / (stages - 1) if stages > 1 else 2.0
            exponent = np.zeros((), dtype=np.float64)
            for a, n in enumerate(self.shape):
                k = np.fft.fftfreq(n, 1.0 / n)
                view = [1] * self.ndim
                view[a] = n
                exponent = exponent + (-0.5 * (k / (f * n)) ** 2).reshape(view)
            self._oss_filters[stage] = torch.as_tensor(np.exp(exponent), dtype=torch.complex64, device=self.device)
        return self._oss_filters[stage]

    # -- running ------------------------------------------------------------------------

    def step(self, name: str) -> None:
        """Apply one operation (``"ER"``, ``"HIO"``, ``"RAAR"``, ``"DM"``, ``"OSS"`` or ``"SW"``)."""
        name = name.upper()
        if name not in OPERATORS:
            raise ValueError(f"unknown operation {name!r}; known: {', '.join(OPERATORS)}")
        out = OPERATORS[name](self)
        if out is not None:
            loss, free = out
            self._loss.append(loss)
            self._free.append(free)
            self._size.append(self.support_size)
            self.iteration += 1

    def run(self, recipe: Recipe | str, callback: Callable[[dict], None] | None = None, *,
            callback_every: int | None = None) -> "Engine":
        """Apply a recipe.

        Parameters
        ----------
        recipe : Recipe or str
        callback : callable, optional
            Called as ``callback(info)`` every ``callback_every`` iterations and
            after the last, with ``info = dict(iteration, total, loss,
            free_loss, operation)`` (iteration counts within this run; ``loss``
            the lowest Fourier error over starts).  The engine never prints.
        callback_every : int, optional
            Default: about 100 calls per run.
        """
        recipe = parse(recipe) if isinstance(recipe, str) else recipe
        counts = recipe.counts()
        self.sw_done, self.sw_total = 0, counts.get("SW", 0)
        self.oss_done, self.oss_total = 0, counts.get("OSS", 0)
        self.oss_best_loss = None
        total = recipe.iterations
        every = callback_every or max(1, total // 100)
        done = 0
        t0 = time.perf_counter()
        for name in recipe.steps():
            self.step(name)
            if name in ITERATIONS:
                done += 1
                if callback is not None and (done % every == 0 or done == total):
                    callback(dict(iteration=done, total=total, loss=float(self._loss.last().min()),
                                  free_loss=float(self._free.last().min()), operation=name))
        self._warn_guard()
        self.timings["iterations"] += time.perf_counter() - t0
        return self

    def _warn_guard(self) -> None:
        collapsed = int((self.guard.collapsed > 0).sum())
        exploded = int((self.guard.exploded > 0).sum())
        if collapsed or exploded:
            log.warning("shrink-wrap guard: support collapsing in %d and exploding in %d of %d starts "
                        "(updates refused); try another sw_threshold", collapsed, exploded, self.starts)

    # -- results ------------------------------------------------------------------------

    def estimates(self) -> torch.Tensor:
        """The object estimate of every start, ``P_S x`` (origin first, ``(K, *grid)``)."""
        return self.project(self.x)

    def final_errors(self) -> dict[str, torch.Tensor]:
        """Fourier errors of :meth:`estimates`: ``loss``, ``free_loss``, ``free_poisson`` (each ``(K,)``)."""
        X = fft.fft(self.estimates(), self.ndim)
        loss, free = fourier_errors(X, self.data)
        return {"loss": loss, "free_loss": free, "free_poisson": free_poisson(X, self.data)}

    def rank_values(self, errors: dict[str, torch.Tensor] | None = None) -> np.ndarray:
        """Each start's error by ``options.rank_by`` (the Fourier error when no pixel is held out; NaN -> inf)."""
        errors = errors or self.final_errors()
        key = {"free": "free_loss", "free_poisson": "free_poisson", "fourier": "loss"}[self.options.rank_by]
        values = errors[key].detach().cpu().double().numpy()
        if np.all(np.isnan(values)):
            values = errors["loss"].detach().cpu().double().numpy()
        return np.where(np.isnan(values), np.inf, values)

    def ranking(self, errors: dict[str, torch.Tensor] | None = None) -> np.ndarray:
        """Start indices (positions in the batch) from best to worst by ``options.rank_by``."""
        return np.argsort(self.rank_values(errors), kind="stable")

    def objects(self) -> tuple[np.ndarray, np.ndarray]:
        """Every start's estimate and support in the file conventions (centred, phase fixed)."""
        est = self.estimates().detach().cpu().numpy()
        sup = self.support.detach().cpu().numpy()
        pairs = [centre_object(o, s) for o, s in zip(est, sup)]
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    def history(self) -> dict[str, np.ndarray]:
        """Per-iteration curves of every start, each ``(starts, iterations)``."""
        grid = math.prod(self.shape)
        return {
            "loss_starts": self._loss.numpy(),
            "free_loss_starts": self._free.numpy(),
            "support_fraction_starts": self._size.numpy() / grid,
        }

    def result(self, config: dict | None = None) -> Result:
        """The best start as a :class:`~doubledip.result.Result`.

        ``history`` holds ``loss`` and ``free_loss`` (best start, per iteration),
        the same for every start (``*_starts``, shape ``(starts, iterations)``),
        ``support_fraction_starts``, and per start the final ``final_loss_starts``,
        ``final_free_loss_starts``, ``final_free_poisson_starts``,
        ``guard_collapsed_starts``, ``guard_exploded_starts`` (guard events),
        ``sw_threshold_starts`` (shrink-wrap thresholds after back-off) and ``rank_starts``
        (0 = best).  The returned object is the best start, or with ``options.average > 1``
        the average of the best starts that fit about as well (ranking error at most
        ``average_error_ratio`` times the best's) and agree with it
        (:func:`~doubledip.postprocess.average_aligned`), with the best start's support.
        ``config`` gets ``best_start`` and ``averaged_starts`` (indices in
        ``start_indices``), ``free_pixels`` and the guard summary.
        """
        t0 = time.perf_counter()
        errors = self.final_errors()
        values = self.rank_values(errors)
        order = np.argsort(values, kind="stable")
        best = int(order[0])
        candidates = [int(j) for j in order[: self.options.average]
                      if values[j] <= self.options.average_error_ratio * values[best]]
        estimates = self.estimates()[torch.as_tensor(candidates, device=self.device)].detach().cpu().numpy()
        supports = self.support[torch.as_tensor(candidates, device=self.device)].detach().cpu().numpy()
        centred = [centre_object(o, s) for o, s in zip(estimates, supports)]
        obj, sup = centred[0]
        averaged = [best]
        if len(centred) > 1:
            mean, used = average_aligned([o for o, _ in centred], tolerance=self.options.average_tolerance)
            obj, _ = centre_object(fft.uncentre(mean, self.ndim), fft.uncentre(sup, self.ndim))
            averaged = [int(candidates[j]) for j in used]
        history = self.history()
        history["loss"] = history["loss_starts"][best]
        history["free_loss"] = history["free_loss_starts"][best]
        for key, value in errors.items():
            history[f"final_{key}_starts"] = value.detach().cpu().double().numpy()
        history["guard_collapsed_starts"] = self.guard.collapsed.cpu().double().numpy()
        history["guard_exploded_starts"] = self.guard.exploded.cpu().double().numpy()
        history["sw_threshold_starts"] = self.guard.threshold.cpu().double().numpy()
        rank = np.empty(self.starts)
        rank[order] = np.arange(self.starts)
        history["rank_starts"] = rank
        config = dict(config or {})
        config.update(
            best_start=int(self.start_indices[best]),
            averaged_starts=[int(self.start_indices[j]) for j in averaged],
            free_pixels=int(self.free.sum()),
            fused_loops=self.fused,
            initial_support_fraction=self.initial_support_fraction,
            support_guard={"collapsing_starts": int((history["guard_collapsed_starts"] > 0).sum()),
                           "exploding_starts": int((history["guard_exploded_starts"] > 0).sum())},
        )
        timings = dict(self.timings)
        timings["result"] = time.perf_counter() - t0
        timings["total"] = sum(timings.values())
        return Result(obj, sup, history, config, self.seed, timings)
