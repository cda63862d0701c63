"""What runs on a Dask worker: one input, or one start of one input, and the gathering of starts.

Every task is idempotent, so Dask may run it again after a worker died: results
are only ever written atomically (:func:`doubledip.io.write_result`), and a task
whose result file already exists and reads back (:func:`doubledip.io.read_result`)
returns that result's row instead of computing it again.  A task never raises
for a bad input: it returns a row with ``status = "failed"`` and the one-line
message, so one bad file does not stop a batch.

Each task limits torch to one thread (``torch.set_num_threads(1)``) in the worker
process it runs in: a worker is one process per core.

Test hook: when the environment variable ``DOUBLEDIP_BATCH_TEST_SLEEP`` holds a
number of seconds, each solve waits that long first (after reading the input).
The fault-tolerance tests use it to keep tasks in flight long enough to kill a
worker or the whole batch mid-run; nothing else should set it.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from doubledip import io
from doubledip.batch.jobs import Job
from doubledip.batch.selection import best_start, free_loss, selection_value
from doubledip.batch.summary import BatchRow, error_message, one_line

__all__ = ["Settings", "run_job", "run_start", "gather_starts", "start_seed", "valid_result", "row_from_result",
           "TEST_SLEEP_ENV"]

log = logging.getLogger(__name__)

TEST_SLEEP_ENV = "DOUBLEDIP_BATCH_TEST_SLEEP"


@dataclass(frozen=True)
class Settings:
    """How every input of a batch is reconstructed (sent to the workers).

    Attributes
    ----------
    method : str
        Registered method name (:func:`doubledip.methods.get_method`).
    options : dict
        The method's options (validated by the caller; rebuilt on the worker).
    seed : int
        Seed of every input (start ``k`` of a spread run: :func:`start_seed`).
    device : str
        ``"cpu"`` or ``"cuda"``.
    spread : int
        0: each task runs all starts of its input; ``K >= 1``: ``K`` tasks run one
        start each and :func:`gather_starts` picks the best.
    starts_option : str or None
        Name of the method's option counting its starts (``starts`` for the
        classical methods, ``restarts`` for ``ddip``), set to 1 in spread tasks.
    starts : int or None
        Starts per input (recorded in the summary).
    """

    method: str
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    spread: int = 0
    starts_option: str | None = None
    starts: int | None = None


def start_seed(seed: int, k: int) -> int:
    """Seed of start ``k`` of a spread run: ``seed`` itself for ``k = 0`` (so one spread start
    is the plain run), else a 63-bit child ``SeedSequence(seed, spawn_key=(k,))``."""
    if k == 0:
        return int(seed)
    state = np.random.SeedSequence(int(seed), spawn_key=(int(k),)).generate_state(2, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


def valid_result(path):
    """The result at ``path`` if it exists and reads back, else None."""
    if not Path(path).is_file():
        return None
    try:
        return io.read_result(path)
    except Exception:  # noqa: BLE001 - a broken file is as good as no file: it is computed again
        log.info("%s exists but does not read back; computing it again", path)
        return None


def _worker_address() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return f"{socket.gethostname()}:{os.getpid()}"


def _limit_threads() -> None:
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _test_hook_sleep() -> None:
    seconds = os.environ.get(TEST_SLEEP_ENV)
    if seconds:
        time.sleep(float(seconds))


def _solve(measurement, settings: Settings, seed: int, *, one_start: bool = False):
    from doubledip.config import make_options
    from doubledip.methods import get_method

    method = get_method(settings.method)
    options = dict(settings.options)
    if one_start and settings.starts_option:
        options[settings.starts_option] = 1
    opts = make_options(method.options_cls, options, source=f"{settings.method} options")
    _test_hook_sleep()
    t0 = time.perf_counter()
    result = method.solve(measurement, opts, seed=seed, device=settings.device)
    seconds = time.perf_counter() - t0
    result.config.setdefault("method", settings.method)
    return result, seconds


def _fourier_metrics(measurement, result) -> tuple[float, float]:
    """R-factor and amplitude error of the result's far field against the measured pattern."""
    from doubledip import fft, metrics

    obj = result.object
    if obj.shape != measurement.intensity.shape:
        return math.nan, math.nan
    amplitude = np.abs(fft.cfft(obj, obj.ndim))
    return (metrics.r_factor(measurement.intensity, amplitude, measurement.mask),
            metrics.amplitude_error(measurement.intensity, amplitude, measurement.mask))


def _new_row(job: Job, settings: Settings, measurement, result, worker: str, seconds: float) -> BatchRow:
    r, amp = _fourier_metrics(measurement, result)
    return BatchRow(job.input, job.name, job.output, "ok", settings.method, settings.seed, settings.starts,
                    r, amp, free_loss(result), seconds, worker)


def _failed_row(job: Job, settings: Settings, err: BaseException, worker: str, seconds: float) -> BatchRow:
    return BatchRow(job.input, job.name, job.output, "failed", settings.method, settings.seed, settings.starts,
                    time_s=seconds, worker=worker, error=error_message(err))


def row_from_result(job: Job, result, status: str = "ok") -> BatchRow:
    """The summary row of a finished result: the row stored in ``config["batch"]`` when the
    batch wrote it, else one computed again from the result and its input."""
    stored = result.config.get("batch")
    if isinstance(stored, dict):
        row = BatchRow.from_dict({**stored, "input": job.input, "name": job.name, "output": job.output})
        row.status = status
        return row
    row = BatchRow(job.input, job.name, job.output, status, str(result.config.get("method", "")), result.seed,
                   time_s=float(result.timings.get("total", math.nan)), free_loss=free_loss(result))
    try:
        row.r_factor, row.amplitude_error = _fourier_metrics(io.read_pattern(job.input), result)
    except Exception as err:  # noqa: BLE001 - the metrics are a courtesy here
        row.error = one_line(f"metrics: {err}")
    return row


def _curves(history) -> dict:
    return {k: v for k, v in history.items() if k in ("loss", "free_loss") and np.ndim(v) == 1}


def _ensure_figure(job: Job, result, row: BatchRow) -> None:
    """Write the figure if it is wanted and missing; a failure is noted in the row, not fatal."""
    if not job.figure or Path(job.figure).is_file():
        return
    try:
        from doubledip import report

        r = f", R = {row.r_factor:.3f}" if math.isfinite(row.r_factor) else ""
        fig = report.result_figure(result.object, support=result.support, history=_curves(result.history),
                                   title=f"{job.name}: {row.method}{r}")
        report.save_figure(fig, job.figure)
    except Exception as err:  # noqa: BLE001 - the result is written; the figure is extra
        row.error = one_line(f"figure not written: {err}")


def _write(job: Job, result, row: BatchRow) -> None:
    result.config["batch"] = row.to_dict()
    Path(job.output).parent.mkdir(parents=True, exist_ok=True)
    io.write_result(job.output, result)


def run_job(job: Job, settings: Settings) -> dict:
    """Reconstruct one input with all its starts; write its result and figure; return its row.

    Returns
    -------
    dict
        :meth:`BatchRow.to_dict` (plain types, cheap to send back).
    """
    t0 = time.perf_counter()
    worker = _worker_address()
    try:
        _limit_threads()
        existing = valid_result(job.output)
        if existing is not None:
            row = row_from_result(job, existing)
        else:
            measurement = io.read_pattern(job.input)
            result, seconds = _solve(measurement, settings, settings.seed)
            row = _new_row(job, settings, measurement, result, worker, seconds)
            _write(job, result, row)
            existing = result
        _ensure_figure(job, existing, row)
    except Exception as err:  # noqa: BLE001 - a failed input is a row, not a dead batch
        log.info("%s failed", job.input, exc_info=True)
        row = _failed_row(job, settings, err, worker, time.perf_counter() - t0)
    return row.to_dict()


def run_start(job: Job, settings: Settings, k: int) -> dict:
    """Run start ``k`` of a spread input (seed :func:`start_seed`) into ``job.work_dir/start-k.npz``.

    Returns
    -------
    dict
        ``k``, ``seed``, ``path``, ``key`` and ``value`` (:func:`selection_value`),
        ``time_s``, ``worker``, ``error`` ("" when it worked) and ``done`` (the
        input's final result already existed, nothing was run).
    """
    t0 = time.perf_counter()
    seed = start_seed(settings.seed, k)
    path = job.work_dir / f"start-{k}.npz"
    info = {"k": k, "seed": seed, "path": str(path), "key": "", "value": math.nan, "time_s": 0.0,
            "worker": _worker_address(), "error": "", "done": False}
    try:
        _limit_threads()
        if valid_result(job.output) is not None:
            info["done"] = True
            return info
        result = valid_result(path)
        if result is None:
            measurement = io.read_pattern(job.input)
            result, seconds = _solve(measurement, settings, seed, one_start=True)
            result.config["batch_start"] = {"k": k, "seed": seed, "worker": info["worker"], "time_s": seconds}
            path.parent.mkdir(parents=True, exist_ok=True)
            io.write_result(path, result)
        stored = result.config.get("batch_start", {})
        info["time_s"] = float(stored.get("time_s", math.nan))
        info["worker"] = str(stored.get("worker", info["worker"]))
        info["key"], info["value"] = selection_value(result)
    except Exception as err:  # noqa: BLE001 - reported by gather_starts
        info["error"] = error_message(err)
        info["time_s"] = time.perf_counter() - t0
    return info


def gather_starts(job: Job, settings: Settings, *starts: dict) -> dict:
    """Pick the best of the starts of one input (:func:`best_start`), write it as the input's result.

    The result is the chosen start's, with ``config["batch_spread"]`` recording
    every start's seed, selection key and value, worker and error, and the
    chosen ``k``.  The partial results are removed once the result is written.
    """
    t0 = time.perf_counter()
    worker = _worker_address()
    try:
        existing = valid_result(job.output)
        if existing is not None:
            row = row_from_result(job, existing)
        else:
            ok = [s for s in starts if not s["error"]]
            if not ok:
                first = starts[0]["error"] if starts else "no starts were run"
                raise _StartsFailed(first if len(starts) < 2 else f"{first} (all {len(starts)} starts failed)")
            best = ok[best_start([(s["key"], s["value"]) for s in ok])]
            result = io.read_result(best["path"])
            measurement = io.read_pattern(job.input)
            result.config["batch_spread"] = {
                "chosen": best["k"],
                "key": best["key"],
                "starts": [{key: s[key] for key in ("k", "seed", "key", "value", "worker", "time_s", "error")}
                           for s in starts],
            }
            workers = ";".join(dict.fromkeys(s["worker"] for s in ok))
            seconds = float(sum(s["time_s"] for s in starts))
            row = _new_row(job, settings, measurement, result, workers, seconds)
            failed = len(starts) - len(ok)
            if failed:
                first = next(s["error"] for s in starts if s["error"])
                row.error = one_line(f"{failed} of {len(starts)} starts failed: {first}")
            _write(job, result, row)
            existing = result
        _ensure_figure(job, existing, row)
        shutil.rmtree(job.work_dir, ignore_errors=True)
        try:
            job.work_dir.parent.rmdir()  # OUTDIR/.batch, once empty
        except OSError:
            pass
    except _StartsFailed as err:
        row = _failed_row(job, settings, err, worker, float(sum(s["time_s"] for s in starts)))
        row.error = str(err)
    except Exception as err:  # noqa: BLE001 - a failed input is a row, not a dead batch
        row = _failed_row(job, settings, err, worker, time.perf_counter() - t0)
    return row.to_dict()


class _StartsFailed(Exception):
    """Every start of an input failed; the message is the first start's."""

