"""Quality of a classical preset on simulated 2D crystals (not part of the test suite).

For each case (object size n in an N x N pattern, noiseless or with Poisson
noise and a beamstop) it simulates ``--samples`` crystals
(``doubledip.simulate.crystal2d(n, seed=i)``, measurement seed ``1000 + i``),
runs the method with ``--starts`` batched starts (phasing seed ``i``) and
reports the symmetry-adjusted error of the returned object
(``doubledip.metrics.sa_error``): success rates at 0.05 and 0.2, median, and
the error of the best start in hindsight (to separate failures of the
algorithm from failures of the free-error ranking).

    python benchmarks/classical_quality.py                       # all four cases, 16 samples
    python benchmarks/classical_quality.py --samples 4 --cases noiseless-64
    python benchmarks/classical_quality.py --set sw_threshold=0.15 --set beta=0.8

Writes ``benchmarks/out/classical_quality.json`` and ``.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import tomllib
from pathlib import Path

import numpy as np
import torch

from doubledip import metrics
from doubledip.classical import Engine
from doubledip.config import make_options, options_dict
from doubledip.methods import get_method
from doubledip.simulate import crystal2d, simulate_measurement

CASES = {
    "noiseless-32": dict(n=32, N=64, photons=None, beamstop=0.0),
    "noiseless-64": dict(n=64, N=128, photons=None, beamstop=0.0),
    "noisy-32": dict(n=32, N=64, photons=1e6, beamstop=3.0),
    "noisy-64": dict(n=64, N=128, photons=1e6, beamstop=3.0),
}


def parse_set(pairs):
    out = {}
    for pair in pairs or []:
        key, _, text = pair.partition("=")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()
    return out


def run_case(name, case, *, method, options, samples, device, first=0):
    errors, subpixel, oracle, seconds, collapsed, exploded, per_start = [], [], [], [], [], [], []
    for i in range(first, first + samples):
        m = simulate_measurement(crystal2d(case["n"], seed=i), pattern_shape=(case["N"],) * 2,
                                 photons=case["photons"], beamstop=case["beamstop"], seed=1000 + i)
        t0 = time.perf_counter()
        engine = Engine.from_measurement(m, options=options, seed=i, device=device)
        engine.run(options.recipe)
        result = engine.result({"method": method})
        seconds.append(time.perf_counter() - t0)
        errors.append(metrics.sa_error(m.object, result.object))
        subpixel.append(metrics.sa_error(m.object, result.object, subpixel=True))
        objects, _ = engine.objects()
        start_errors = [metrics.sa_error(m.object, o) for o in objects]
        oracle.append(min(start_errors))
        per_start.append({"sa_error": start_errors,
                          **{k: result.history[f"final_{k}_starts"].tolist()
                             for k in ("loss", "free_loss", "free_poisson")}})
        collapsed.append(int((result.history["guard_collapsed_starts"] > 0).sum()))
        exploded.append(int((result.history["guard_exploded_starts"] > 0).sum()))
    e, o, sub = np.array(errors), np.array(oracle), np.array(subpixel)
    return {
        "case": name, **case, "samples": samples, "first_sample": first,
        "success_0.05": float(np.mean(e < 0.05)), "success_0.2": float(np.mean(e < 0.2)),
        "median": float(np.median(e)), "mean": float(np.mean(e)), "success_0.1": float(np.mean(e < 0.1)),
        "median_subpixel": float(np.median(sub)), "success_0.1_subpixel": float(np.mean(sub < 0.1)),
        "success_0.2_subpixel": float(np.mean(sub < 0.2)), "errors_subpixel": [round(float(v), 4) for v in sub],
        "oracle_median": float(np.median(o)), "oracle_success_0.2": float(np.mean(o < 0.2)),
        "seconds_per_sample": float(np.mean(seconds)),
        "starts_with_collapse_guard": collapsed, "starts_with_explode_guard": exploded,
        "errors": [round(float(v), 4) for v in e], "oracle_errors": [round(float(v), 4) for v in o],
        "per_start": per_start,
    }


def markdown(report) -> str:
    lines = [f"# Classical quality: `{report['method']}`, {report['starts']} starts", "",
             f"recipe `{report['options']['recipe']}`; torch {report['torch']}, {report['threads']} thread(s), "
             f"device {report['device']}; {report['seconds']:.0f} s total", "",
             "errors after integer-pixel alignment, and after sub-pixel alignment (`sub`); the oracle is the best "
             "single start in hindsight (integer-pixel)", "",
             "| case | n in N | photons | beamstop | samples | < 0.05 | < 0.1 | < 0.2 | median | median sub | < 0.1 sub "
             "| < 0.2 sub | best start (oracle) median | s / sample |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["cases"]:
        lines.append(f"| {r['case']} | {r['n']} in {r['N']} | {format(r['photons'], 'g') if r['photons'] else 'noiseless'} | {r['beamstop']:g} | "
                     f"{r['samples']} | {r['success_0.05']:.0%} | {r['success_0.1']:.0%} | {r['success_0.2']:.0%} | "
                     f"{r['median']:.3f} | {r['median_subpixel']:.3f} | {r['success_0.1_subpixel']:.0%} | "
                     f"{r['success_0.2_subpixel']:.0%} | "
                     f"{r['oracle_median']:.3f} | {r['seconds_per_sample']:.1f} |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", default="hio-er-sw")
    p.add_argument("--samples", type=int, default=16)
    p.add_argument("--first", type=int, default=0, help="index of the first sample (samples first .. first + samples - 1)")
    p.add_argument("--starts", type=int, default=8)
    p.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    p.add_argument("--set", action="append", metavar="OPTION=VALUE", help="override an option of the method")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out", default="benchmarks/out/classical_quality")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    method = get_method(args.method)
    options = make_options(method.options_cls, parse_set(args.set), source="--set", starts=args.starts)
    t0 = time.perf_counter()
    results = []
    for name in args.cases.split(","):
        r = run_case(name, CASES[name], method=args.method, options=options, samples=args.samples,
                     device=args.device, first=args.first)
        print(f"{name}: <0.05 {r['success_0.05']:.0%}  <0.2 {r['success_0.2']:.0%}  median {r['median']:.3f}  "
              f"sub-pixel: median {r['median_subpixel']:.3f} <0.1 {r['success_0.1_subpixel']:.0%}  (oracle {r['oracle_median']:.3f})  {r['seconds_per_sample']:.1f} s/sample", flush=True)
        results.append(r)
    report = {"method": args.method, "starts": args.starts, "options": options_dict(options), "cases": results,
              "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "machine": platform.processor() or platform.machine(), "seconds": time.perf_counter() - t0}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
