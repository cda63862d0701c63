"""Benchmark suites x methods -> per-sample rows, summary tables and figures.

A benchmark run lives in one folder::

    OUT/rows/<method>/<sample>.json     one finished (sample, method): errors, time, seeds
    OUT/results/<method>/<sample>.npz   its reconstruction (result contract)
    OUT/samples.csv                     every row (rewritten as rows come in)
    OUT/summary.md                      one line per method: median / p90 error, success rates, time
    OUT/errors.png, OUT/gallery_<method>.png

A finished (sample, method) pair is never run again, so an interrupted command
can simply be repeated.  Every sample is simulated from ``seed + index``, so the
same command reproduces the same samples everywhere.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from doubledip import io, metrics
from doubledip.config import make_options, options_dict
from doubledip.errors import ConfigError
from doubledip.methods import get_method
from doubledip.result import Result

log = logging.getLogger(__name__)

__all__ = ["SUITES", "BenchmarkSpec", "run_benchmark", "summarise", "MODEL_METHODS"]

#: Pseudo-methods of the ``models`` suite: plain gradient descent on least squares per forward model.
MODEL_METHODS = ("gd-gaussian", "gd-fresnel", "gd-farfield")
#: Complex Gaussian measurements per object pixel in the ``models`` suite.
GAUSSIAN_OVERSAMPLING = 8


@dataclass(frozen=True)
class Suite:
    """A family of simulated samples."""

    name: str
    kind: str
    description: str
    dislocation: bool = False
    default_size: int = 64
    default_methods: tuple[str, ...] = ("ddip", "hio-er-sw")


SUITES = {
    s.name: s
    for s in [
        Suite("crystal2d", "crystal2d", "2D crystals, uniform magnitude, smooth strain phase"),
        Suite("crystal2d-disloc", "crystal2d", "2D crystals with a dislocation (phase vortex)", dislocation=True),
        Suite("cell2d", "cell2d", "2D cell-like objects, nonnegative real part"),
        Suite("crystal3d", "crystal3d", "3D crystals (convex polyhedra)", default_size=32),
        Suite(
            "models",
            "crystal2d",
            "plain gradient descent on least squares: Gaussian, Fresnel and far-field models",
            default_size=16,
            default_methods=MODEL_METHODS + ("hio-er-sw", "ddip"),
        ),
    ]
}


@dataclass(frozen=True)
class BenchmarkSpec:
    """Everything that defines a benchmark run (recorded in ``OUT/spec.json``)."""

    suite: str
    count: int = 50
    methods: tuple[str, ...] = ()
    size: int | None = None
    photons: float | None = None
    beamstop: float = 0.0
    seed: int = 0
    device: str = "cpu"
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resolved(self) -> "BenchmarkSpec":
        if self.suite not in SUITES:
            raise ConfigError(f"unknown suite '{self.suite}'; known suites are {', '.join(SUITES)}")
        suite = SUITES[self.suite]
        methods = self.methods or suite.default_methods
        for name in methods:
            if name not in MODEL_METHODS:
                get_method(name)
            elif self.suite != "models":
                raise ConfigError(f"method '{name}' belongs to the 'models' suite only")
        unknown = set(self.method_options) - set(methods)
        if unknown:
            raise ConfigError(f"options given for method(s) not run: {', '.join(sorted(unknown))}")
        return BenchmarkSpec(
            self.suite,
            self.count,
            tuple(methods),
            self.size or suite.default_size,
            self.photons,
            self.beamstop,
            self.seed,
            self.device,
            self.method_options,
        )


def _sample_name(index: int) -> str:
    return f"sample_{index:04d}"


def _measurement(spec: BenchmarkSpec, index: int):
    from doubledip.simulate import simulate

    suite = SUITES[spec.suite]
    return simulate(
        suite.kind,
        spec.size,
        seed=spec.seed + index,
        photons=spec.photons,
        beamstop=spec.beamstop,
        dislocation=suite.dislocation,
    )


def _model_for(name: str, pattern_shape, object_shape, seed: int):
    from doubledip.physics import FarField, Fresnel, Gaussian

    if name == "gd-gaussian":
        return Gaussian(object_shape, GAUSSIAN_OVERSAMPLING * int(np.prod(object_shape)), seed=seed)
    if name == "gd-fresnel":
        return Fresnel(pattern_shape, object_shape)
    return FarField(pattern_shape, object_shape)


def _run_model_method(name: str, measurement, seed: int, options: dict) -> tuple[np.ndarray, dict, str]:
    """Plain gradient descent against the model named by ``name`` (noiseless data of that model)."""
    from doubledip.leastsquares import gradient_descent
    from doubledip.physics import FarField

    far = FarField(measurement.intensity.shape, measurement.meta["object_shape"])
    truth_box = far.crop(measurement.object)
    model = _model_for(name, far.data_shape, far.object_shape, seed)
    intensity = model.intensity(truth_box)
    iterations = int(options.get("iterations", 2000))
    est, history = gradient_descent(model, intensity, iterations=iterations, seed=seed)
    return far.pad(est), {"loss": history}, ",".join(model.symmetries)


def _run_one(spec: BenchmarkSpec, index: int, method_name: str, out: str) -> dict:
    """Simulate sample ``index``, reconstruct it with ``method_name``, write its result and row."""
    import torch

    out = Path(out)
    measurement = _measurement(spec, index)
    seed = spec.seed + index
    options = spec.method_options.get(method_name, {})
    start = time.perf_counter()
    if method_name in MODEL_METHODS:
        obj, history, symmetries = _run_model_method(method_name, measurement, seed, options)
        symmetries = tuple(symmetries.split(","))
        result = Result(obj, np.abs(obj) > 0, history, {"method": method_name, **options}, seed)
    else:
        method = get_method(method_name)
        opts = make_options(method.options_cls, options, source=f"{method_name} options")
        result = method.solve(measurement, opts, seed=seed, device=spec.device)
        result.config.setdefault("method", method_name)
        result.config.setdefault("options", options_dict(opts))
        symmetries = metrics.symmetries_for("farfield")
    elapsed = time.perf_counter() - start
    truth = measurement.object
    amp = np.abs(_farfield_amplitude(result.object))
    row = {
        "suite": spec.suite,
        "sample": _sample_name(index),
        "method": method_name,
        "seed": seed,
        "sa_error": metrics.sa_error(truth, result.object, symmetries=symmetries),
        "sa_error_scaled": metrics.sa_error(truth, result.object, symmetries=symmetries, scale=True),
        "r_factor": metrics.r_factor(measurement.intensity, amp, measurement.mask),
        "time_s": elapsed,
        "threads": torch.get_num_threads(),
        "worker": os.getpid(),
    }
    result_path = out / "results" / method_name / f"{_sample_name(index)}.npz"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    io.write_result(result_path, result)
    _write_json(out / "rows" / method_name / f"{_sample_name(index)}.json", row)
    return row


def _farfield_amplitude(obj: np.ndarray) -> np.ndarray:
    from doubledip import fft

    return np.abs(fft.cfft(obj, obj.ndim))


def _write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with io.atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1))


def _worker_init(threads: int) -> None:
    import torch

    torch.set_flush_denormal(True)
    torch.set_num_threads(threads)


def finished_rows(out: Path) -> list[dict]:
    """Every row already written under ``out/rows``."""
    rows = []
    for path in sorted((Path(out) / "rows").glob("*/*.json")):
        rows.append(json.loads(path.read_text()))
    return rows


def run_benchmark(
    spec: BenchmarkSpec,
    out,
    *,
    jobs: int = 1,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Run every missing (sample, method) pair of ``spec`` into folder ``out``.

    Pairs run in ``jobs`` worker processes (each with ``cpu_count // jobs``
    threads); finished pairs found in ``out`` are skipped, so repeating an
    interrupted command completes it.  ``progress(row)`` is called as rows
    arrive.  Returns all rows (old and new) and rewrites the CSV, the summary
    and the figures.
    """
    spec = spec.resolved()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    spec_path = out / "spec.json"
    spec_dict = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.__dict__.items()}
    if spec_path.exists():
        old = json.loads(spec_path.read_text())
        different = [k for k in spec_dict if k not in ("count", "methods") and old.get(k) != spec_dict[k]]
        if different:
            raise ConfigError(
                f"{out}: holds a benchmark with other settings ({', '.join(different)}); use another output folder"
            )
    _write_json(spec_path, spec_dict)
    done = {(r["sample"], r["method"]) for r in finished_rows(out)}
    todo = [
        (i, m) for i in range(spec.count) for m in spec.methods if (_sample_name(i), m) not in done
    ]
    log.info("%d pairs to run, %d already done", len(todo), len(done))
    if todo:
        if jobs <= 1:
            for i, m in todo:
                row = _run_one(spec, i, m, str(out))
                if progress:
                    progress(row)
        else:
            threads = max(1, (os.cpu_count() or 1) // jobs)
            with ProcessPoolExecutor(jobs, initializer=_worker_init, initargs=(threads,)) as pool:
                pending = {pool.submit(_run_one, spec, i, m, str(out)) for i, m in todo}
                while pending:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        row = fut.result()
                        if progress:
                            progress(row)
    rows = [r for r in finished_rows(out) if r["method"] in spec.methods]
    write_outputs(out, rows, spec)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per method: count, median and 90th percentile of the error, success at 0.1 / 0.2, median time."""
    table = []
    for method in dict.fromkeys(r["method"] for r in rows):
        err = np.array([r["sa_error"] for r in rows if r["method"] == method])
        t = np.array([r["time_s"] for r in rows if r["method"] == method])
        table.append(
            {
                "method": method,
                "samples": int(err.size),
                "median_error": float(np.median(err)),
                "p90_error": float(np.percentile(err, 90)),
                "success_0.1": float(np.mean(err < 0.1)),
                "success_0.2": float(np.mean(err < 0.2)),
                "median_time_s": float(np.median(t)),
            }
        )
    return table


def markdown_table(table: list[dict]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| method | samples | median error | 90th pct error | < 0.1 | < 0.2 | median time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in table:
        lines.append(
            f"| {r['method']} | {r['samples']} | {r['median_error']:.3f} | {r['p90_error']:.3f} | "
            f"{100 * r['success_0.1']:.0f}% | {100 * r['success_0.2']:.0f}% | {r['median_time_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, rows: list[dict], spec: BenchmarkSpec) -> None:
    """CSV of all rows, the Markdown summary and the figures."""
    if not rows:
        return
    rows = sorted(rows, key=lambda r: (r["sample"], r["method"]))
    fields = list(rows[0])
    with io.atomic_output(out / "samples.csv") as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    table = summarise(rows)
    header = (
        f"# Benchmark: suite `{spec.suite}`\n\n{SUITES[spec.suite].description}; object size {spec.size}, "
        f"photons {spec.photons or 'noiseless'}, beamstop radius {spec.beamstop}, seeds {spec.seed}.."
        f"{spec.seed + spec.count - 1}; error = symmetry-adjusted relative error.\n\n"
    )
    with io.atomic_output(out / "summary.md") as tmp:
        tmp.write_text(header + markdown_table(table))
    _write_json(out / "summary.json", table)
    _figures(out, rows, spec)


def _figures(out: Path, rows: list[dict], spec: BenchmarkSpec) -> None:
    from matplotlib.figure import Figure

    from doubledip import report

    methods = list(dict.fromkeys(r["method"] for r in rows))
    fig = Figure(figsize=(1.6 * len(methods) + 3, 4), layout="constrained")
    ax = fig.add_subplot()
    data = [[r["sa_error"] for r in rows if r["method"] == m] for m in methods]
    ax.boxplot(data, showfliers=False)
    for k, d in enumerate(data, start=1):
        jitter = np.random.default_rng(k).uniform(-0.15, 0.15, len(d))
        ax.plot(np.full(len(d), k) + jitter, d, ".", alpha=0.6)
    ax.set_xticks(range(1, len(methods) + 1), methods, rotation=20)
    ax.set_yscale("log")
    ax.axhline(0.1, color="gray", ls="--", lw=0.8)
    ax.axhline(0.2, color="gray", ls=":", lw=0.8)
    ax.set_ylabel("symmetry-adjusted error")
    ax.set_title(f"suite {spec.suite}")
    report.save_figure(fig, out / "errors.png")
    for method in methods:
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["sa_error"])
        panels = []
        for label, row in (("best", mine[0]), ("median", mine[len(mine) // 2]), ("worst", mine[-1])):
            measurement = _measurement(spec, int(row["sample"].split("_")[1]))
            result = io.read_result(out / "results" / method / f"{row['sample']}.npz")
            symmetries = ("phase",) if method in ("gd-gaussian", "gd-fresnel") else metrics.symmetries_for("farfield")
            aligned = metrics.align(measurement.object, result.object, symmetries=symmetries)
            caption = f"{label}: {row['sample']}, error {row['sa_error']:.3f}"
            panels.append((caption, measurement.object, aligned))
        report.save_figure(report.gallery_figure(panels, title=f"{spec.suite}: {method}"), out / f"gallery_{method}.png")
