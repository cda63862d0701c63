"""``doubledip phase INPUT -o result.npz``: reconstruct an object from a diffraction pattern.

Any registered method (:mod:`doubledip.methods`) runs through the same path:
``--config`` and the flags build its options with
:func:`doubledip.config.make_options`, ``solve(measurement, options, seed=,
device=, callback=)`` returns a :class:`~doubledip.result.Result`, and the
result is written with :func:`doubledip.io.write_result`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from doubledip.errors import ConfigError, DataError

__all__ = ["add_parser", "run"]

DEFAULT_METHOD = "hio-er-sw"
_RUN_KEYS = ("method", "seed", "device")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "phase",
        help="reconstruct an object from a diffraction pattern",
        description="Phase retrieval of a far-field pattern with a registered method: the classical\n"
        "presets (hio-er-sw, raar-er-sw, dm-er-sw, oss, hio, raar, dm, er, recipe) or the\n"
        "deep-image-prior solver (ddip).  Classical methods run --starts random starts as one\n"
        "batch and return the one with the lowest error on held-out pixels.",
        epilog="examples:\n"
        "  doubledip phase sample.npz -o result.npz\n"
        "  doubledip phase sample.npz -o result.cxi --recipe '20*ER + 3*(180*HIO + SW) + 200*ER' --starts 8\n"
        "  doubledip phase sample.npz -o result.npz --config run.toml --device cuda\n"
        "run.toml holds options of the method as top-level keys (e.g. beta = 0.8) or in a table\n"
        "named after the method ([hio-er-sw]); it may also set method, seed and device.\n"
        "Flags override the file.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", metavar="INPUT", help="pattern file (.npz .npy .h5 .cxi .tif .edf; file:inner)")
    parser.add_argument("-o", "--output", required=True, metavar="RESULT", help="result file (.npz or .cxi)")
    parser.add_argument("--method", default=None,
                        help=f"reconstruction method (default {DEFAULT_METHOD}); an unknown name lists the known ones")
    parser.add_argument("--recipe", default=None, metavar="TEXT",
                        help="classical recipe, e.g. '20*ER + 3*(180*HIO + SW) + 200*ER' (ER HIO RAAR DM OSS SW)")
    parser.add_argument("--starts", type=int, default=None, metavar="K", help="random starts, run as one batch")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="seed of every random choice (default 0)")
    parser.add_argument("--device", default=None, help="cpu (default), cuda or cuda:N")
    parser.add_argument("--config", default=None, metavar="TOML", help="options of the method (see below)")
    parser.add_argument("--mask", default=None, metavar="FILE", help="mask file (nonzero = unmeasured pixel)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def _read_config(path: str | None) -> tuple[dict, dict, dict]:
    """``(run keys, top-level options, per-method tables)`` of a TOML file."""
    if not path:
        return {}, {}, {}
    from doubledip.config import load_toml

    data = load_toml(path)
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    run_keys = {k: flat.pop(k) for k in _RUN_KEYS if k in flat}
    return run_keys, flat, tables


def _device(name: str):
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device '{name}' is not a device; use cpu, cuda or cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device '{name}' is not supported; use cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device '{name}': CUDA is not available on this machine; use --device cpu")
    return device


def _check_output(path: str) -> None:
    from doubledip import io

    out = Path(path)
    suffixes = getattr(io, "WRITE_SUFFIXES", {".npz": "npz", ".cxi": "cxi"})
    if out.suffix.lower() not in suffixes:
        raise DataError(out, f"cannot write a result as '{out.suffix or '(no suffix)'}'",
                        f"use one of {', '.join(suffixes)}")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise DataError(out, "its folder does not exist", "create the folder or choose another -o path")


class _Progress:
    """A tqdm bar fed by the solver's callback (created on the first call, when the total is known)."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self.bar = None

    def __call__(self, info: dict) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=int(info.get("total", 0)) or None, desc=self.label, unit="it",
                            file=sys.stderr, dynamic_ncols=True, leave=False)
        self.bar.n = int(info.get("iteration", self.bar.n))
        if info.get("loss") is not None:
            self.bar.set_postfix(loss=f"{float(info['loss']):.3g}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args) -> int:
    from doubledip import io
    from doubledip.config import make_options
    from doubledip.methods import get_method, method_names

    run_keys, flat, tables = _read_config(args.config)
    name = args.method or run_keys.get("method") or DEFAULT_METHOD
    method = get_method(str(name))
    known_methods = set(method_names())
    strange = sorted(set(tables) - known_methods)
    if strange:
        raise ConfigError(f"{args.config}: [{strange[0]}] is not a method; tables must be named after one of "
                          f"{', '.join(sorted(known_methods))}")
    mapping = {**flat, **tables.get(method.name, {})}
    fields = {f.name for f in dataclasses.fields(method.options_cls)}
    overrides = {}
    for flag in ("recipe", "starts"):
        value = getattr(args, flag)
        if value is None:
            continue
        if flag not in fields:
            raise ConfigError(f"--{flag} does not apply to method '{method.name}'; its options are "
                              f"{', '.join(sorted(fields))}")
        overrides[flag] = value
    options = make_options(method.options_cls, mapping, source=args.config or "options", **overrides)
    seed = args.seed if args.seed is not None else run_keys.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"{args.config}: seed must be an integer, got {seed!r}")
    device = _device(str(args.device or run_keys.get("device", "cpu")))
    _check_output(args.output)

    measurement = io.read_pattern(args.input, mask=args.mask)
    progress = _Progress(method.name, enabled=not args.no_progress and sys.stderr.isatty())
    try:
        result = method.solve(measurement, options, seed=seed, device=str(device), callback=progress)
    finally:
        progress.close()
    result.config.setdefault("method", method.name)
    result.config.setdefault("seed", seed)
    result.config.setdefault("input", str(args.input))
    io.write_result(args.output, result)

    summary = [f"wrote {args.output}", f"method {method.name}"]
    if "best_start" in result.config and "starts" in result.config:
        summary.append(f"best start {result.config['best_start']} of {result.config['starts']}")
    for key in ("free_loss", "loss"):
        values = result.history.get(key)
        if values is not None and len(values):
            summary.append(f"final {key.replace('_', ' ')} {float(values[-1]):.3g}")
            break
    summary.append(f"{result.timings.get('total', 0.0):.1f} s")
    print(", ".join(summary))
    guard = result.config.get("support_guard") or {}
    if guard.get("collapsing_starts") or guard.get("exploding_starts"):
        print(f"doubledip: note: shrink-wrap guard acted in {guard.get('collapsing_starts', 0)} start(s) with a "
              f"collapsing and {guard.get('exploding_starts', 0)} with an exploding support; see the result's "
              "history (guard_*_starts)", file=sys.stderr)
    return 0
