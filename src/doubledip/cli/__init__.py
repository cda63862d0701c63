"""Command-line interface: the only place that prints, parses arguments and shows progress.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``.  User mistakes (:class:`~doubledip.errors.UserError`) are
printed as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import os

# Threads of the OpenMP pool must sleep, not spin, while they wait: with spinning threads,
# a run that shares its cores with another process (a cluster node, a second run) was
# measured 80x slower (0.34 s vs 27.6 s for a small HIO run).  Read when torch loads, so set
# before any import of torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402

from doubledip import __version__  # noqa: E402
from doubledip.errors import UserError  # noqa: E402

__all__ = ["main", "build_parser"]

COMMANDS = ["simulate", "info", "evaluate", "phase", "show", "benchmark", "demo", "prepare", "export", "batch", "deblur"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doubledip",
        description="Phase retrieval for coherent diffraction imaging with untrained deep image priors, "
        "and the classical algorithms as baselines.",
    )
    parser.add_argument("--version", action="version", version=f"doubledip {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"doubledip.cli.{name}")
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    # Before anything starts torch's thread pool, whose threads inherit the flag: subnormal
    # arithmetic is ~100x slower on x86 (see doubledip.methods.flush_denormals).  Switched off
    # again on return, for callers that run main() in their own process (tests, notebooks).
    import torch

    torch.set_flush_denormal(True)
    try:
        return _main(argv)
    finally:
        torch.set_flush_denormal(False)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        return int(args.run(args) or 0)
    except UserError as err:
        print(f"doubledip: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("doubledip: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
