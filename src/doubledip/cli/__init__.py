"""Command-line interface: the only place that prints, parses arguments and shows progress.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``.  User mistakes (:class:`~doubledip.errors.UserError`) are
printed as one line on stderr with exit code 2, never as a traceback.
"""

from __future__ import annotations

import os

# Threads of torch's OpenMP pool (GNU libgomp) spin for a long while before they sleep: when
# another process shares the cores (a cluster node, a second run) a small HIO run was measured
# 160x slower (33 s vs 0.2 s).  A short spin keeps the quiet-machine speed (0.19 s) and
# limits the shared-core loss (0.55 s).  Read when torch loads, so set before importing it.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "1000")

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
