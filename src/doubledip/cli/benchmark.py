"""``doubledip benchmark``: suites x methods -> CSV, Markdown tables and figures."""

from __future__ import annotations

import sys

from doubledip.benchmark import SUITES, BenchmarkSpec, markdown_table, run_benchmark, summarise
from doubledip.cli.options import method_tables


def add_parser(sub):
    p = sub.add_parser(
        "benchmark",
        help="run a suite of simulated samples through several methods; tables and figures",
        description="Simulate COUNT samples of a suite, reconstruct each with every method, and write per-sample "
        "CSV, a Markdown summary (median / 90th percentile error, success at 0.1 and 0.2, median time) and "
        "figures (error distribution; best, median and worst reconstruction per method) to OUT. Re-running the "
        "same command skips finished samples.",
    )
    p.add_argument("--suite", required=True, choices=sorted(SUITES), help="which samples")
    p.add_argument("--count", type=int, default=50, help="number of samples (default 50)")
    p.add_argument("--methods", help="comma-separated methods (default: the suite's)")
    p.add_argument("-o", "--output", required=True, help="output folder")
    p.add_argument("--size", type=int, help="object box size n (pattern 2n); default 64 (3D: 32, models: 16)")
    p.add_argument("--photons", type=float, help="expected total photon count (default: noiseless)")
    p.add_argument("--beamstop", type=float, default=0.0, help="beamstop radius in pixels (default 0)")
    p.add_argument("--seed", type=int, default=0, help="sample i uses seed S+i (default 0)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--jobs", type=int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--config", help="TOML file with one [METHOD] table of options per method")
    p.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE", help="a method option (repeatable)")
    p.set_defaults(run=run)


def run(args) -> int:
    from doubledip.errors import ConfigError

    if args.count < 1 or args.jobs < 1:
        raise ConfigError("--count and --jobs must be at least 1")
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip()) if args.methods else ()
    spec = BenchmarkSpec(
        args.suite,
        args.count,
        methods,
        args.size,
        args.photons,
        args.beamstop,
        args.seed,
        args.device,
        method_tables(args.config, args.set),
    )
    spec = spec.resolved()
    total = spec.count * len(spec.methods)
    seen = [0]

    def progress(row):
        seen[0] += 1
        print(
            f"[{seen[0]}] {row['sample']} {row['method']:>12s}: error {row['sa_error']:.3f}, "
            f"R {row['r_factor']:.3f}, {row['time_s']:.1f} s",
            file=sys.stderr,
            flush=True,
        )

    print(f"benchmark {spec.suite}: {spec.count} samples x {len(spec.methods)} methods = {total} runs", file=sys.stderr)
    rows = run_benchmark(spec, args.output, jobs=args.jobs, progress=progress)
    print(markdown_table(summarise(rows)), end="")
    print(f"wrote {args.output}/samples.csv, summary.md, errors.png, gallery_*.png")
    return 0
