"""The deep-image-prior fitting loop, shared by phase retrieval and blind deblurring.

:func:`fit` minimises ``objective(model())`` over the model's weights with Adam
(Kingma & Ba, ICLR 2015) and a learning-rate schedule, and watches a
*monitored* output (the current output, or an exponential moving average of the
outputs) through a ``monitor`` function that never contributes gradients --
typically the data misfit on held-out ("free") measurements, the
cross-validation idea of the free R-factor (Brunger, Nature 355, 472 (1992)).
The returned output is the one with the lowest free loss, or the one at the
minimum of the windowed variance of the outputs (Wang, Li, Zhuang & Sun, "Early
stopping for deep image prior", TMLR 2023), or the last one.

The loop is a plain state machine: everything it needs to continue (weights,
optimizer moments, iteration, history, best output, EMA, variance window,
input-noise random state) is saved every ``checkpoint_every`` iterations, and
``resume=True`` continues from the checkpoint to exactly the result of an
uninterrupted run.

Protocol of ``model``: an :class:`torch.nn.Module` whose
``forward(noise_std=0.0, generator=None)`` returns a tensor (the generators of
:mod:`doubledip.dip` follow it).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from doubledip.errors import DataError

__all__ = ["FitOptions", "FitResult", "fit", "learning_rate", "select_best"]

logger = logging.getLogger(__name__)

SCHEDULES = ("constant", "cosine", "step")
EARLY_STOPPING = ("none", "free", "variance")


@dataclass(frozen=True)
class FitOptions:
    """Options of :func:`fit`.

    Attributes
    ----------
    iterations : int
        Maximum number of Adam steps.
    lr : float
        Peak learning rate.
    schedule : {"constant", "cosine", "step"}
        ``cosine`` decays to ``lr * min_lr_factor`` at the end; ``step`` halves the rate at
        50% and again at 75% of the iterations.
    warmup : int
        Linear warm-up steps from ``lr / warmup`` to ``lr``.
    min_lr_factor : float
        Final rate of the cosine schedule, relative to ``lr``.
    betas : tuple of float
        Adam's moment decay rates.
    weight_decay : float
        Adam's L2 weight decay.
    grad_clip : float or None
        Clip the global gradient norm to this value.
    input_noise : float
        Standard deviation of the noise added to the generators' inputs at every step
        (DIP's input-noise regularisation); 0 disables it.
    ema : float or None
        Decay of an exponential moving average of the outputs; when set, the average is
        the monitored (and returned) output.
    early_stopping : {"none", "free", "variance"}
        Stop when the free loss (``monitor()["free"]``), or the windowed variance of the
        outputs, has not improved for ``patience`` iterations.
    select : {"auto", "free", "variance", "last"}
        Which output to return: the lowest free loss, the lowest windowed variance, or
        the last.  ``auto``: ``free`` when the monitor reports a free loss, else
        ``variance`` with variance early stopping, else ``last``.
    patience : int
        Early-stopping patience in iterations.
    min_delta : float
        Relative improvement that resets the patience counter.
    window : int
        Window of the variance criterion.
    checkpoint_every : int
        Save the loop's state every this many iterations (0: only at the end, when a
        checkpoint path is given).
    """

    iterations: int = 1000
    lr: float = 2e-3
    schedule: str = "constant"
    warmup: int = 0
    min_lr_factor: float = 0.1
    betas: tuple = (0.9, 0.999)
    weight_decay: float = 0.0
    grad_clip: float | None = None
    input_noise: float = 0.0
    ema: float | None = None
    early_stopping: str = "none"
    select: str = "auto"
    patience: int = 200
    min_delta: float = 1e-3
    window: int = 50
    checkpoint_every: int = 0

    def __post_init__(self):
        if self.iterations < 0:
            raise ValueError(f"iterations must be >= 0, got {self.iterations}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule '{self.schedule}'; use {', '.join(SCHEDULES)}")
        if self.early_stopping not in EARLY_STOPPING:
            raise ValueError(f"unknown early_stopping '{self.early_stopping}'; use {', '.join(EARLY_STOPPING)}")
        if self.select not in ("auto", "free", "variance", "last"):
            raise ValueError(f"unknown select '{self.select}'; use auto, free, variance or last")
        if self.ema is not None and not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ema must lie in [0, 1), got {self.ema}")


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes
    ----------
    output : Tensor
        The selected output (detached).
    best : float
        The selection criterion at the selected output (free loss or windowed variance;
        the training loss for ``select="last"``).
    best_iteration : int
        Iteration (0-based) of the selected output.
    iterations : int
        Iterations run.
    stopped_early : bool
        Whether early stopping ended the run.
    history : dict of str -> ndarray
        ``"loss"`` (the training objective), every metric of ``objective`` and ``monitor``,
        ``"lr"``, and ``"variance"`` when it is tracked; one value per iteration.
    """

    output: torch.Tensor
    best: float
    best_iteration: int
    iterations: int
    stopped_early: bool
    history: dict[str, np.ndarray]


def learning_rate(iteration: int, options: FitOptions) -> float:
    """The learning rate of step ``iteration`` (0-based) under ``options``' schedule."""
    lr = options.lr
    if options.warmup and iteration < options.warmup:
        return lr * (iteration + 1) / options.warmup
    t = iteration / max(1, options.iterations)
    if options.schedule == "cosine":
        low = lr * options.min_lr_factor
        return low + 0.5 * (lr - low) * (1 + math.cos(math.pi * t))
    if options.schedule == "step":
        return lr * (0.5 if t >= 0.5 else 1.0) * (0.5 if t >= 0.75 else 1.0)
    return lr


def select_best(results: list[FitResult]) -> int:
    """Index of the result with the lowest ``best`` (restarts ranked without ground truth)."""
    return int(np.argmin([r.best if np.isfinite(r.best) else np.inf for r in results]))


def _save(path: Path, state: dict) -> None:
    from doubledip.io import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        torch.save(state, tmp)


def _load(path: Path, options: FitOptions) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same user problem
        raise DataError(path, f"not a readable checkpoint ({err.__class__.__name__})",
                        "delete it or start without --resume") from None
    if state.get("options") != dataclasses.asdict(options):
        raise DataError(path, "checkpoint was written with different fitting options",
                        "resume with the options of the interrupted run, or delete the checkpoint")
    return state


def _to(value, device):
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return {k: _to(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to(v, device) for v in value]
    return value


def fit(model: torch.nn.Module, objective: Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, float]]], *,
        options: FitOptions = FitOptions(), monitor: Callable[[torch.Tensor], dict[str, float]] | None = None,
        seed: int = 0, checkpoint: str | Path | None = None, resume: bool = False,
        callback: Callable[[dict[str, Any]], Any] | None = None) -> FitResult:
    r"""Fit a generator: :math:`\min_\theta \mathcal{L}(G_\theta(z))` with Adam.

    Parameters
    ----------
    model : torch.nn.Module
        ``model(noise_std=..., generator=...)`` returns the output; its parameters are
        fitted in place (on return they hold the last iterate).
    objective : callable
        ``objective(output) -> (loss, metrics)``: the scalar tensor to minimise and a dict
        of floats recorded in the history.
    options : FitOptions
        Optimisation, monitoring, early stopping and checkpoint options.
    monitor : callable, optional
        ``monitor(output) -> dict`` of floats, evaluated without gradients on the
        monitored output; a ``"free"`` entry drives free-loss early stopping and selection.
    seed : int
        Seed of the input-noise draws.
    checkpoint : path, optional
        File of the loop's state (written atomically).
    resume : bool
        Continue from ``checkpoint`` when it exists (a finished checkpoint returns its
        result at once).
    callback : callable, optional
        Called after every iteration with ``dict(iteration, total, loss, lr, **metrics)``;
        returning ``True`` stops the run (like early stopping).

    Returns
    -------
    FitResult
    """
    options = options if isinstance(options, FitOptions) else FitOptions(**options)
    params = [p for p in model.parameters() if p.requires_grad]
    device = params[0].device if params else torch.device("cpu")
    optimizer = torch.optim.Adam(params, lr=options.lr, betas=tuple(options.betas), weight_decay=options.weight_decay)
    noise_rng = torch.Generator(device=device).manual_seed(int(seed))
    checkpoint = Path(checkpoint) if checkpoint is not None else None
    select = options.select
    history: dict[str, list[float]] = collections.defaultdict(list)
    start, best, best_it, best_out, ema_out = 0, math.inf, -1, None, None
    window: collections.deque = collections.deque(maxlen=options.window)
    since_best, stop_best, finished, stopped = 0, math.inf, False, False

    if resume and checkpoint is not None and checkpoint.exists():
        state = _load(checkpoint, options)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(_to(state["optimizer"], device))
        noise_rng.set_state(state["noise_rng"])
        start, best, best_it = state["iteration"], state["best"], state["best_iteration"]
        best_out, ema_out = _to(state["best_output"], device), _to(state["ema"], device)
        window.extend(_to(state["window"], device))
        since_best, stop_best = state["since_best"], state["stop_best"]
        finished, stopped, select = state["finished"], state["stopped"], state["select"]
        history.update({k: list(v) for k, v in state["history"].items()})
        logger.info("resumed %s at iteration %d", checkpoint, start)

    def save(iteration):
        if checkpoint is None:
            return
        _save(checkpoint, dict(
            options=dataclasses.asdict(options), model=model.state_dict(), optimizer=optimizer.state_dict(),
            noise_rng=noise_rng.get_state(), iteration=iteration, best=best, best_iteration=best_it,
            best_output=best_out, ema=ema_out, window=list(window), since_best=since_best, stop_best=stop_best,
            finished=finished,
            stopped=stopped, select=select, history=dict(history),
        ))

    it = start
    while not finished and it < options.iterations:
        lr = learning_rate(it, options)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        if options.input_noise:
            out = model(noise_std=options.input_noise, generator=noise_rng)
        else:
            out = model()
        loss, metrics = objective(out)
        loss.backward()
        if options.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        optimizer.step()

        with torch.no_grad():
            current = out.detach()
            if options.ema is not None:
                ema_out = current.clone() if ema_out is None else ema_out.lerp(current, 1.0 - options.ema)
                watched = ema_out
            else:
                watched = current
            record = {"loss": float(loss.detach()), "lr": lr, **{k: float(v) for k, v in metrics.items()}}
            if monitor is not None:
                record.update({k: float(v) for k, v in monitor(watched).items()})
            if options.early_stopping == "variance" or select == "variance":
                window.append(watched.clone())
                if len(window) == window.maxlen:
                    stack = torch.stack(list(window))
                    record["variance"] = float((stack - stack.mean(0)).abs().square().mean())
                else:
                    record["variance"] = math.nan
        if select == "auto":
            select = "free" if "free" in record else ("variance" if options.early_stopping == "variance" else "last")
        for key, value in record.items():
            history[key].append(value)

        criterion = {"free": record.get("free", math.nan), "variance": record.get("variance", math.nan),
                     "last": record["loss"]}[select]
        if select == "last" or (math.isfinite(criterion) and criterion < best):
            best, best_it, best_out = criterion, it, watched.clone()
        if options.early_stopping != "none":
            value = record.get(options.early_stopping, math.nan)
            if math.isfinite(value) and (not math.isfinite(stop_best) or value < stop_best * (1 - options.min_delta)):
                stop_best, since_best = value, 0
            else:
                since_best += 1
            stopped = since_best >= options.patience
        it += 1
        if callback is not None and callback(dict(iteration=it, total=options.iterations, **record)) is True:
            stopped = True
        if stopped:
            finished = True
        elif options.checkpoint_every and it % options.checkpoint_every == 0 and it < options.iterations:
            save(it)
    finished = True
    if best_out is None:
        with torch.no_grad():
            best_out = (model() if options.ema is None or ema_out is None else ema_out).detach()
    save(it)
    hist = {k: np.asarray(v, dtype=np.float64) for k, v in history.items()}
    return FitResult(best_out, float(best), int(best_it), int(it), bool(stopped), hist)
