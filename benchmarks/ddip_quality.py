"""Quality of ``ddip`` (warm and cold start) against the classical pipeline on simulated data.

Every method runs on the same samples (object seed ``1000 + i``, run seed ``i``) of each
condition; the error is the symmetry-adjusted relative error
(:func:`doubledip.metrics.sa_error`, global phase + translation + twin, no scale fit) with
integer and with sub-pixel translation.  Writes ``OUT.json`` (every sample) and ``OUT.md``
(median, 90th percentile, success rates, median time per condition and method).

Examples
--------
    PYTHONPATH=src python benchmarks/ddip_quality.py --conditions noisy,dislocation --samples 16 \
        --entry ddip --entry hio-er-sw --entry 'ddip-cold=ddip:{"start": "cold"}' --jobs 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CONDITIONS = {
    # name: (kind, size, photons, beamstop, dislocation)
    "noiseless": ("crystal2d", 64, None, 0.0, False),
    "noisy": ("crystal2d", 64, 1e6, 3.0, False),
    "dislocation": ("crystal2d", 64, 1e6, 3.0, True),
    "noiseless-dislocation": ("crystal2d", 64, None, 0.0, True),
    "cells": ("cell2d", 64, 1e6, 3.0, False),
    "cells-noiseless": ("cell2d", 64, None, 0.0, False),
    "crystal3d": ("crystal3d", 32, None, 0.0, False),
    "crystal3d-noisy": ("crystal3d", 32, 1e7, 2.0, False),
}


def parse_entry(text: str):
    """``label=method:{json options}`` or ``method`` -> (label, method, options)."""
    label, _, rest = text.partition("=") if "=" in text.split(":")[0] else (text.split(":")[0], "", text)
    method, _, opts = rest.partition(":")
    return label, method, json.loads(opts) if opts else {}


def run_one(task):
    condition, index, label, method_name, options, device, threads, size = task
    import torch

    torch.set_num_threads(threads)
    from doubledip.config import make_options
    from doubledip.methods import get_method
    from doubledip.metrics import sa_error
    from doubledip.simulate import simulate

    kind, default_size, photons, beamstop, dislocation = CONDITIONS[condition]
    box = size or default_size
    if kind == "crystal3d":
        box = min(box, 32) if size is None else box
    m = simulate(kind, box, seed=1000 + index, photons=photons, beamstop=beamstop, dislocation=dislocation)
    method = get_method(method_name)
    opts = make_options(method.options_cls, options, source=label)
    t0 = time.perf_counter()
    result = method.solve(m, opts, seed=index, device=device)
    elapsed = time.perf_counter() - t0
    return {
        "condition": condition, "index": index, "label": label, "method": method_name, "options": options,
        "error": sa_error(m.object, result.object), "error_subpixel": sa_error(m.object, result.object, subpixel=True),
        "time": elapsed, "free_chi2": result.config.get("free_chi2"), "penalty": result.config.get("penalty"), "success_flag": result.config.get("success"),
        "starts": result.config.get("starts"), "timings": result.timings,
    }


def _number(value, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summarise(rows, key="error_subpixel"):
    lines = ["| condition | method | n | median | p90 | <0.05 | <0.1 | <0.2 | median s | flag precision | flag recall |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    groups = {}
    for r in rows:
        groups.setdefault((r["condition"], r["label"]), []).append(r)
    stats = {}
    for (cond, label), rs in sorted(groups.items()):
        e = np.array([r[key] for r in rs])
        t = np.array([r["time"] for r in rs])
        flags = [r["success_flag"] for r in rs]
        prec = rec = ""
        if all(f is not None for f in flags):
            f = np.array(flags, bool)
            good = e < 0.1
            prec = f"{(good & f).sum()}/{f.sum()}"
            rec = f"{(good & f).sum()}/{good.sum()}"
        s = dict(n=len(e), median=float(np.median(e)), p90=float(np.percentile(e, 90)),
                 under_005=float(np.mean(e < 0.05)), under_01=float(np.mean(e < 0.1)),
                 under_02=float(np.mean(e < 0.2)), median_time=float(np.median(t)))
        stats[f"{cond}/{label}"] = s
        lines.append(f"| {cond} | {label} | {s['n']} | {s['median']:.3f} | {s['p90']:.3f} | {s['under_005']:.0%} | "
                     f"{s['under_01']:.0%} | {s['under_02']:.0%} | {s['median_time']:.1f} | {prec} | {rec} |")
    return "\n".join(lines), stats


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--conditions", default="noisy", help=f"comma list of {', '.join(CONDITIONS)}")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--first", type=int, default=0, help="first sample index")
    p.add_argument("--size", type=int, default=None, help="object box side (default 64 in 2D, 32 in 3D)")
    p.add_argument("--entry", action="append", default=[],
                   help="label=method:{json options}; repeatable (default: ddip and hio-er-sw)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="benchmarks/out/ddip_quality")
    args = p.parse_args(argv)
    entries = [parse_entry(e) for e in (args.entry or ["ddip", "hio-er-sw"])]
    conditions = args.conditions.split(",")
    tasks = [(c, i, label, method, opts, args.device, args.threads, args.size)
             for c in conditions for label, method, opts in entries
             for i in range(args.first, args.first + args.samples)]
    tasks.sort(key=lambda t: t[1])  # sample by sample: a partial run still covers every method
    rows = []
    t0 = time.perf_counter()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".jsonl").open("w")

    def record(row):
        rows.append(row)
        log.write(json.dumps(row, default=str) + "\n")
        log.flush()
        print(f"{row['condition']:>12} {row['label']:>16} #{row['index']:<3} err {row['error']:.3f} "
              f"sub {row['error_subpixel']:.3f} chi2 {_number(row['free_chi2'], 3)} pen {_number(row['penalty'], 4)} "
              f"starts {row['starts']} {row['time']:.1f}s", flush=True)

    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import as_completed

        ctx = mp.get_context("spawn" if args.device.startswith("cuda") else "fork")
        with ProcessPoolExecutor(args.jobs, mp_context=ctx) as pool:
            for future in as_completed([pool.submit(run_one, t) for t in tasks]):
                record(future.result())
    else:
        for task in tasks:
            record(run_one(task))
    log.close()
    table, stats = summarise(rows)
    table_int, _ = summarise(rows, key="error")
    meta = dict(command=" ".join([os.path.basename(sys.executable)] + sys.argv), wall=time.perf_counter() - t0,
                cpu_count=os.cpu_count(), device=args.device)
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, stats=stats, rows=rows), indent=1, default=str))
    out.with_suffix(".md").write_text(f"Command: `{meta['command']}`\n\nSub-pixel aligned error:\n\n{table}\n\n"
                                      f"Integer-pixel aligned error:\n\n{table_int}\n")
    print(table)
    print(f"wall {meta['wall']:.0f} s")


if __name__ == "__main__":
    main()
