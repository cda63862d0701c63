"""The per-input summary of a batch: ``OUTDIR/summary.csv`` and ``OUTDIR/summary.md``.

Both files are rewritten atomically whenever a result comes in and at the end,
from the rows of every input: results found on disk (``skipped``), results of
this run (``ok``), failures (``failed``, with the one-line message) and inputs
still running (``pending``).  Nothing in them is needed to resume a batch: the
result files themselves say what is done.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from doubledip.errors import UserError
from doubledip.io import atomic_output

__all__ = ["BatchRow", "STATUSES", "write_summary", "markdown_summary", "one_line", "error_message", "read_summary"]

STATUSES = ("ok", "failed", "skipped", "pending")


def one_line(text, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_message(err: BaseException) -> str:
    """A user error's own message (``file: problem; fix``), else ``Type: message``; one line."""
    return one_line(str(err) if isinstance(err, UserError) else f"{type(err).__name__}: {err}")


@dataclass
class BatchRow:
    """One input of a batch.

    Attributes
    ----------
    input : str
        The pattern spec.
    name : str
        Result name (``OUTDIR/<name>.npz``).
    output : str
        The result file.
    status : str
        ``ok`` (computed in this run), ``skipped`` (its result was already there),
        ``failed`` or ``pending``.
    method : str
    seed : int or None
        The seed of the input (spread starts derive theirs from it).
    starts : int or None
        Starts per input.
    r_factor, amplitude_error : float
        Of the result's far field against the input pattern on measured pixels
        (:func:`doubledip.metrics.r_factor`, :func:`doubledip.metrics.amplitude_error`,
        with the least-squares scale); NaN when unknown.
    free_loss : float
        The free (held-out pixel) error of the returned start; NaN when the method has none.
    time_s : float
        Seconds spent solving (summed over spread starts).
    worker : str
        Address of the Dask worker(s) that computed it.
    error : str
        One-line message of a failure (or of a problem that did not stop the result).
    """

    input: str
    name: str
    output: str
    status: str
    method: str = ""
    seed: int | None = None
    starts: int | None = None
    r_factor: float = math.nan
    amplitude_error: float = math.nan
    free_loss: float = math.nan
    time_s: float = math.nan
    worker: str = ""
    error: str = ""

    def to_dict(self) -> dict:
        return {k: (float(v) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "BatchRow":
        known = {f.name for f in fields(cls)}
        row = cls(**{k: v for k, v in data.items() if k in known})
        for name in ("r_factor", "amplitude_error", "free_loss", "time_s"):
            value = getattr(row, name)
            setattr(row, name, math.nan if value is None else float(value))
        return row


COLUMNS = [f.name for f in fields(BatchRow)]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def markdown_summary(rows: list[BatchRow], *, title: str = "Batch summary") -> str:
    """The rows as a Markdown document: counts per status, then one table line per input."""
    counts = {s: sum(r.status == s for r in rows) for s in STATUSES}
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines = [f"# {title}", "", f"{len(rows)} inputs: {text or 'none'}.", "",
             "| input | status | method | seed | R-factor | amplitude error | free loss | time (s) | worker | error |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        cells = [r.input, r.status, r.method, _cell(r.seed), _cell(r.r_factor), _cell(r.amplitude_error),
                 _cell(r.free_loss), _cell(r.time_s), r.worker, r.error.replace("|", "\\|")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_summary(outdir, rows: list[BatchRow]) -> tuple[Path, Path]:
    """Write ``summary.csv`` and ``summary.md`` in ``outdir`` atomically; return their paths."""
    outdir = Path(outdir)
    csv_path, md_path = outdir / "summary.csv", outdir / "summary.md"
    with atomic_output(csv_path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(COLUMNS)
            for row in rows:
                writer.writerow([_cell(getattr(row, c)) for c in COLUMNS])
    with atomic_output(md_path) as tmp:
        tmp.write_text(markdown_summary(rows))
    return csv_path, md_path


def read_summary(path) -> list[dict]:
    """The rows of a ``summary.csv`` as dicts of strings (for inspection and tests)."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
