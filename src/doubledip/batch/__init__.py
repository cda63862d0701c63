"""Batch reconstruction of many patterns on a Dask cluster (local or distributed).

``submit_batch`` sends one task per input (or one per start with
``spread_starts``) to Dask and returns a :class:`Batch` of futures and rows;
``run_batch`` waits for them.  Results are written by the workers, atomically,
as ``OUTDIR/<name>.npz`` (+ ``<name>.png``), with ``OUTDIR/summary.csv`` and
``summary.md`` kept up to date; a re-run skips inputs whose result reads back,
so an interrupted batch is finished by running it again.

Modules: :mod:`~doubledip.batch.jobs` (inputs and names),
:mod:`~doubledip.batch.tasks` (what runs on a worker),
:mod:`~doubledip.batch.selection` (the best-start rule),
:mod:`~doubledip.batch.summary` (rows and tables), :mod:`~doubledip.batch.api`.
"""

from doubledip.batch.api import Batch, connect, make_settings, run_batch, submit_batch
from doubledip.batch.jobs import Job, find_inputs, plan_jobs
from doubledip.batch.selection import best_start, free_loss, selection_value
from doubledip.batch.summary import BatchRow, read_summary, write_summary
from doubledip.batch.tasks import Settings, gather_starts, run_job, run_start, start_seed

__all__ = [
    "Batch", "BatchRow", "Job", "Settings", "submit_batch", "run_batch", "make_settings", "connect",
    "find_inputs", "plan_jobs", "run_job", "run_start", "gather_starts", "start_seed",
    "selection_value", "free_loss", "best_start", "write_summary", "read_summary",
]
