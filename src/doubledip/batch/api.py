"""Submitting a batch to Dask and collecting its rows (the notebook API).

>>> batch = submit_batch(["patterns/"], "results", method="hio-er-sw", starts=8)   # doctest: +SKIP
>>> for row in batch.as_completed():                                               # doctest: +SKIP
...     print(row.name, row.status, row.r_factor)
>>> rows = batch.results(); batch.close()                                          # doctest: +SKIP

or, all in one, ``rows = run_batch(["patterns/"], "results", method="hio-er-sw")``.

Without ``client`` or ``scheduler`` a :class:`distributed.LocalCluster` is started
on this machine (``workers`` processes of one thread each, ``min(2, cpu count)``
by default) and closed with the batch; ``scheduler="tcp://host:8786"`` connects
to a running ``dask scheduler``; ``client`` uses yours and leaves it open.
Workers read the inputs and write the results themselves, so on a cluster of
several machines the inputs and the output folder must be on a shared file
system at the same paths, and every worker needs doubledip installed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import threading
import time
import uuid
from dataclasses import fields
from pathlib import Path
from typing import Callable, Iterator

from doubledip.batch.jobs import Job, find_inputs, plan_jobs
from doubledip.batch.summary import BatchRow, error_message, write_summary
from doubledip.batch.tasks import Settings, gather_starts, row_from_result, run_job, run_start, valid_result
from doubledip.errors import ConfigError, DataError

__all__ = ["Batch", "submit_batch", "run_batch", "make_settings", "connect", "STARTS_OPTIONS",
           "DEFAULT_CONNECT_TIMEOUT"]

#: Option names that count a method's starts, in the order they are looked for.
STARTS_OPTIONS = ("starts", "restarts")
#: Seconds to wait for a scheduler (and for its first worker) before giving up.
DEFAULT_CONNECT_TIMEOUT = 10.0


def _starts_option(options_cls) -> str | None:
    names = {f.name for f in fields(options_cls)}
    return next((n for n in STARTS_OPTIONS if n in names), None)


def make_settings(method: str, options: dict | None = None, *, starts: int | None = None, spread_starts: bool = False,
                  seed: int = 0, device: str = "cpu") -> Settings:
    """Check the method and its options here, before anything is sent to a worker.

    ``starts`` sets the method's start count (``starts`` or ``restarts``);
    with ``spread_starts`` that many one-start tasks run instead (default: the
    method's own count).

    Raises
    ------
    ConfigError
        Unknown method, unknown or invalid option, a start count for a method
        without starts, a device other than ``cpu``/``cuda[:N]``.
    """
    from doubledip.config import make_options
    from doubledip.methods import get_method

    m = get_method(method)
    options = dict(options or {})
    starts_option = _starts_option(m.options_cls)
    if (starts is not None or spread_starts) and starts_option is None:
        raise ConfigError(f"method '{method}' has no starts option ({' or '.join(STARTS_OPTIONS)}); "
                          "drop --starts / --spread-starts")
    if starts is not None:
        if int(starts) < 1:
            raise ConfigError(f"--starts must be at least 1, got {starts}")
        options[starts_option] = int(starts)
    if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device '{device}' is not supported; use cpu or cuda (cuda:N for GPU N)")
    validated = make_options(m.options_cls, options, source=f"{method} options")
    count = int(getattr(validated, starts_option)) if starts_option else None
    if spread_starts:
        make_options(m.options_cls, {**options, starts_option: 1}, source=f"{method} options")
    return Settings(method, options, int(seed), device, count if spread_starts else 0, starts_option, count)


def _check_address(address: str) -> None:
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        if scheme in ("tcp", "tls"):
            host, port = parse_host_port(location)
            if not host or not port:
                raise ValueError("no host or port")
    except (ValueError, TypeError) as err:
        raise ConfigError(f"--scheduler '{address}' is not a scheduler address ({error_message(err)}); "
                          "give tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786") from None


def connect(scheduler: str | None = None, *, workers: int | None = None,
            timeout: float = DEFAULT_CONNECT_TIMEOUT):
    """A :class:`distributed.Client` and the :class:`distributed.LocalCluster` it owns (None with ``scheduler``).

    Raises
    ------
    ConfigError
        The scheduler cannot be reached, or has no worker, within ``timeout`` seconds.
    """
    from distributed import Client, LocalCluster

    if scheduler:
        if workers is not None:
            raise ConfigError("--workers sizes the local cluster only; with --scheduler start workers with "
                              f"`dask worker {scheduler}`")
        _check_address(scheduler)
        try:
            client = Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {scheduler} within {timeout:g} s ({error_message(err)}); "
                "check the address (tcp://HOST:PORT) or start one with `dask scheduler` and `dask worker ADDRESS`"
            ) from None
        try:
            client.wait_for_workers(1, timeout=timeout)
        except (TimeoutError, OSError):
            client.close()
            raise ConfigError(f"the Dask scheduler at {scheduler} has no workers; start some with "
                              f"`dask worker {scheduler}`") from None
        return client, None
    n = int(workers) if workers is not None else min(2, os.cpu_count() or 1)
    if n < 1:
        raise ConfigError(f"--workers must be at least 1, got {workers}")
    with _workers_ignore_sigint():
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                               host="127.0.0.1", silence_logs=logging.ERROR)
    try:
        client = Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise
    return client, cluster


@contextlib.contextmanager
def _workers_ignore_sigint():
    """Start local worker processes with SIGINT ignored (an ignored signal stays ignored in a child):
    Ctrl-C in a terminal reaches the whole process group, and the batch, not each worker, handles it
    (it closes the cluster, which stops the workers)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _task_key(kind: str, job: Job, token: str) -> str:
    return f"doubledip-{kind}-{job.name}-{token}"


class Batch:
    """A submitted batch: its jobs, futures and rows.

    Attributes
    ----------
    outdir : Path
    jobs : list of Job
    settings : Settings
    client : distributed.Client or None
        None when every input was already done (no cluster was started).
    skipped_other_method : list of str
        Names of results found on disk that another method made (kept, not redone).
    """

    def __init__(self, outdir, jobs: list[Job], settings: Settings, rows: dict[str, BatchRow], *, client=None,
                 cluster=None, owns_client: bool = False, futures=None, summary_interval: float = 1.0):
        self.outdir = Path(outdir)
        self.jobs = jobs
        self._jobs = {job.name: job for job in jobs}
        self.settings = settings
        self.client = client
        self._cluster = cluster
        self._owns_client = owns_client
        self._rows = rows
        self._futures = dict(futures or {})  # name -> Future of the input's row
        self._keys = {f.key: name for name, f in self._futures.items()}
        self._summary_interval = summary_interval
        self._last_summary = 0.0
        self.skipped_other_method = [r.name for r in rows.values()
                                     if r.status == "skipped" and r.method != settings.method]

    # -- access --------------------------------------------------------------------------

    @property
    def futures(self) -> list:
        """The futures still tracked, one per submitted input (each gives a row dict)."""
        return list(self._futures.values())

    def summary(self) -> list[BatchRow]:
        """Every input's row now, in input order (``pending`` for those not finished)."""
        return [self._rows[job.name] for job in self.jobs]

    def counts(self) -> dict[str, int]:
        """Rows per status."""
        out: dict[str, int] = {}
        for row in self._rows.values():
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def write_summary(self) -> tuple[Path, Path]:
        """Rewrite ``summary.csv`` and ``summary.md`` from the rows now."""
        self._last_summary = time.monotonic()
        return write_summary(self.outdir, self.summary())

    # -- collecting ----------------------------------------------------------------------

    def _collect(self, name: str, future) -> BatchRow:
        job = self._jobs[name]
        try:
            row = BatchRow.from_dict(future.result())
        except Exception as err:  # noqa: BLE001 - e.g. KilledWorker after repeated worker deaths
            row = BatchRow(job.input, job.name, job.output, "failed", self.settings.method, self.settings.seed,
                           self.settings.starts, error=error_message(err))
        return row

    def as_completed(self, timeout: float | None = None) -> Iterator[BatchRow]:
        """Yield each input's row as it finishes; the summary files follow (at most one
        rewrite per ``summary_interval`` seconds, and one at the end).

        Raises
        ------
        TimeoutError
            Nothing left finished within ``timeout`` seconds of the call.
        """
        if not self._futures:
            return
        from distributed import as_completed

        try:
            for future in as_completed(list(self._futures.values()), loop=self.client.loop, timeout=timeout):
                name = self._keys[future.key]
                row = self._collect(name, future)
                self._rows[name] = row
                del self._futures[name]
                future.release()
                if time.monotonic() - self._last_summary >= self._summary_interval:
                    self.write_summary()
                yield row
        finally:
            self.write_summary()

    def results(self, timeout: float | None = None) -> list[BatchRow]:
        """Wait for every input; write the summary; return every row in input order."""
        for _ in self.as_completed(timeout=timeout):
            pass
        self.write_summary()
        return self.summary()

    def close(self) -> None:
        """Cancel what is still running and close the client and local cluster this batch started."""
        if self._owns_client and self.client is not None:
            self.client.close()
            if self._cluster is not None:
                self._cluster.close()
            self.client = self._cluster = None

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _prepare_outdir(outdir) -> Path:
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise DataError(outdir, "is a file, not a folder", "give a folder for the results (-o), new or existing")
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(outdir, f"cannot create the output folder ({err.strerror or err})",
                        "choose a writable place") from None
    if not os.access(outdir, os.W_OK):
        raise DataError(outdir, "output folder is not writable", "choose a writable folder")
    return outdir


def _done_row(job: Job) -> BatchRow | None:
    """The ``skipped`` row of an input whose result (and figure, if wanted) is already on disk."""
    result = valid_result(job.output)
    if result is None or (job.figure and not Path(job.figure).is_file()):
        return None
    return row_from_result(job, result, "skipped")


def submit_batch(inputs, outdir, *, method: str, options: dict | None = None, starts: int | None = None,
                 spread_starts: bool = False, seed: int = 0, device: str = "cpu", figures: bool = True,
                 recursive: bool = False, client=None, scheduler: str | None = None, workers: int | None = None,
                 connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, summary_interval: float = 1.0) -> Batch:
    """Submit a reconstruction of every input to Dask; return at once with a :class:`Batch`.

    Parameters
    ----------
    inputs : list of str or Path
        Pattern files, ``file:inner`` specs or folders (:func:`~doubledip.batch.jobs.find_inputs`).
    outdir : str or Path
        Output folder (created): ``<name>.npz`` results, ``<name>.png`` figures,
        ``summary.csv`` and ``summary.md``.
    method : str
        Registered method (``doubledip.methods.method_names()``).
    options : dict, optional
        The method's options.
    starts : int, optional
        Starts per input (the method's ``starts``/``restarts`` option).
    spread_starts : bool
        Run each start of an input as its own task (start ``k`` with seed
        :func:`~doubledip.batch.tasks.start_seed` ``(seed, k)``) and keep the
        best by :func:`~doubledip.batch.selection.best_start` (the best start
        alone: the classical ``average`` of the best starts needs them in one run).
    seed : int
        Seed of every input.
    device : str
        ``"cpu"`` or ``"cuda"`` on the workers.
    figures : bool
        Write a figure per result.
    recursive : bool
        Look into sub-folders of folder inputs.
    client : distributed.Client, optional
        Use this client (left open).
    scheduler : str, optional
        Address of a running scheduler (``tcp://host:8786``); ignored with ``client``.
    workers : int, optional
        Local cluster size (default ``min(2, cpu count)``).
    connect_timeout : float
        Seconds to wait for the scheduler and its first worker.
    summary_interval : float
        Least seconds between two rewrites of the summary while results come in.

    Returns
    -------
    Batch
        Inputs whose result (and figure) already exists are ``skipped`` and not
        submitted; when nothing is left to do no cluster is started.

    Raises
    ------
    ConfigError, DataError
        Before anything is submitted: unknown method or option, no inputs, an
        output path that is a file, an unreachable scheduler.
    """
    settings = make_settings(method, options, starts=starts, spread_starts=spread_starts, seed=seed, device=device)
    if Path(outdir).exists() and not Path(outdir).is_dir():
        _prepare_outdir(outdir)
    jobs = plan_jobs(find_inputs(inputs, recursive=recursive, exclude=outdir), outdir, figures=figures)
    rows: dict[str, BatchRow] = {}
    todo: list[Job] = []
    for job in jobs:
        row = _done_row(job)
        if row is None:
            row = BatchRow(job.input, job.name, job.output, "pending", settings.method, settings.seed, settings.starts)
            todo.append(job)
        rows[job.name] = row
    owns = client is None and bool(todo)
    cluster = None
    if owns:
        client, cluster = connect(scheduler, workers=workers, timeout=connect_timeout)
    try:
        outdir = _prepare_outdir(outdir)
        futures = {}
        token = uuid.uuid4().hex[:8]
        for job in todo:
            if settings.spread:
                parts = [client.submit(run_start, job, settings, k, key=_task_key(f"start{k}", job, token), pure=False)
                         for k in range(settings.spread)]
                futures[job.name] = client.submit(gather_starts, job, settings, *parts,
                                                  key=_task_key("gather", job, token), pure=False)
            else:
                futures[job.name] = client.submit(run_job, job, settings, key=_task_key("run", job, token),
                                                  pure=False)
        batch = Batch(outdir, jobs, settings, rows, client=client, cluster=cluster, owns_client=owns,
                      futures=futures, summary_interval=summary_interval)
        batch.write_summary()
    except BaseException:
        if owns:
            client.close()
            if cluster is not None:
                cluster.close()
        raise
    return batch


def run_batch(inputs, outdir, *, progress: Callable[[BatchRow], None] | None = None, timeout: float | None = None,
              **kwargs) -> list[BatchRow]:
    """:func:`submit_batch`, wait for every input, close what it started; return every row.

    ``progress(row)`` is called as each submitted input finishes; ``timeout``
    (seconds) bounds the wait.  Keyword arguments are those of :func:`submit_batch`.
    """
    with submit_batch(inputs, outdir, **kwargs) as batch:
        for row in batch.as_completed(timeout=timeout):
            if progress is not None:
                progress(row)
        return batch.results()

