"""``doubledip batch INPUTS... -o OUTDIR``: reconstruct many patterns on a Dask cluster."""

from __future__ import annotations

import argparse
import math
import sys

from doubledip.errors import ConfigError

__all__ = ["add_parser", "run"]

DEFAULT_METHOD = "hio-er-sw"
_RUN_KEYS = ("method", "seed", "device")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "batch",
        help="reconstruct many patterns on a Dask cluster (local or distributed)",
        description="Reconstruct every input pattern with one method on Dask workers.  Each result is written "
        "atomically as OUTDIR/<name>.npz (with <name>.png), named after its input; OUTDIR/summary.csv and "
        "summary.md list per input the status, R-factor and amplitude error against the pattern, free loss, "
        "time and worker, and are updated as results come in.  Running the same command again skips the "
        "inputs whose result is there, so an interrupted batch is finished by repeating it.  Exit code 1 "
        "when an input failed (the others are still done).",
        epilog="examples:\n"
        "  doubledip batch patterns/ -o results --method hio-er-sw --starts 8\n"
        "  doubledip batch p1.npz p2.npz -o results --method ddip --scheduler tcp://head:8786\n"
        "  doubledip batch patterns/ -o results --starts 16 --spread-starts --set hio-er-sw.beta=0.8\n"
        "Without --scheduler a local cluster of --workers processes (one thread each) runs the batch.  With "
        "--scheduler, every worker must see the inputs and OUTDIR at the same paths and have doubledip "
        "installed.  run.toml holds method options as top-level keys or in [METHOD] tables, and may set "
        "method, seed and device.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="pattern files (.npz .npy .h5 .cxi .tif .edf; file:inner) or folders of them")
    parser.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    parser.add_argument("--method", default=None,
                        help=f"reconstruction method (default {DEFAULT_METHOD}); an unknown name lists the known ones")
    parser.add_argument("--starts", type=int, default=None, metavar="K", help="random starts per pattern")
    parser.add_argument("--spread-starts", action="store_true",
                        help="run each start as its own task (seeds derived from --seed) and keep the best "
                        "by free loss, as a single run does")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="seed of every pattern (default 0)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="address of a running Dask scheduler, e.g. tcp://host:8786 (default: a local cluster)")
    parser.add_argument("--workers", type=int, default=None, metavar="W",
                        help="local cluster worker processes (default min(2, CPU count))")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                        help="give up on the scheduler after this long (default 10)")
    parser.add_argument("--config", default=None, metavar="TOML", help="options of the method (see below)")
    parser.add_argument("--set", action="append", metavar="METHOD.OPTION=VALUE",
                        help="a method option, e.g. hio-er-sw.beta=0.8 (repeatable; overrides --config)")
    parser.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N, on the workers")
    parser.add_argument("--figures", action=argparse.BooleanOptionalAction, default=True,
                        help="write a figure per result (default: yes)")
    parser.add_argument("--recursive", action="store_true", help="look for patterns in sub-folders too")
    parser.set_defaults(run=run)
    return parser


def _options(args) -> tuple[str, int, str, dict]:
    """``(method, seed, device, options)`` from the TOML file, ``--set`` and the flags."""
    from doubledip.cli.options import parse_set
    from doubledip.config import load_toml
    from doubledip.methods import get_method, method_names

    data = load_toml(args.config) if args.config else {}
    tables = {k: dict(v) for k, v in data.items() if isinstance(v, dict)}
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    run_keys = {k: flat.pop(k) for k in _RUN_KEYS if k in flat}
    for name, table in parse_set(args.set).items():
        tables.setdefault(name, {}).update(table)
    method = args.method or run_keys.get("method") or DEFAULT_METHOD
    get_method(method)
    unknown = sorted(set(tables) - set(method_names()))
    if unknown:
        raise ConfigError(f"options given for unknown method(s) {', '.join(unknown)}; known methods are "
                          f"{', '.join(method_names())}")
    options = {**flat, **tables.get(method, {})}
    seed = args.seed if args.seed is not None else run_keys.get("seed", 0)
    device = args.device or run_keys.get("device", "cpu")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{args.config}: seed must be an integer, got {seed!r}")
    return method, seed, str(device), options


def _fmt(value, spec=".3f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def run(args) -> int:
    from doubledip.batch import submit_batch

    method, seed, device, options = _options(args)
    batch = submit_batch(args.inputs, args.output, method=method, options=options, starts=args.starts,
                         spread_starts=args.spread_starts, seed=seed, device=device, figures=args.figures,
                         recursive=args.recursive, scheduler=args.scheduler, workers=args.workers,
                         connect_timeout=args.connect_timeout)
    with batch:
        total = len(batch.jobs)
        done = batch.counts().get("skipped", 0)
        where = args.scheduler or (f"local cluster of {len(batch.client.scheduler_info()['workers'])} workers"
                                   if batch.client is not None else "nothing to run")
        spread = f", {batch.settings.spread} starts spread over workers" if batch.settings.spread else ""
        print(f"batch: {total} inputs, {done} already done, method {method}{spread}, on {where}",
              file=sys.stderr, flush=True)
        if batch.skipped_other_method:
            print(f"batch: note: {len(batch.skipped_other_method)} result(s) in {args.output} were made with "
                  f"another method and are kept; delete them or use another OUTDIR to redo them", file=sys.stderr)
        for row in batch.as_completed():
            done += 1
            if row.status == "failed":
                line = f"failed: {row.error}"
            else:
                line = (f"{row.status}: R {_fmt(row.r_factor)}, free loss {_fmt(row.free_loss, '.3g')}, "
                        f"{_fmt(row.time_s, '.1f')} s on {row.worker}")
            print(f"[{done}/{total}] {row.name}: {line}", file=sys.stderr, flush=True)
        rows = batch.results()
    counts = {}
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    text = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(f"wrote {args.output}/summary.csv and summary.md: {text}")
    return 1 if counts.get("failed") else 0
