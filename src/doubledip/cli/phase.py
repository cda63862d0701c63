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

from doubledip.cli.options import check_output_path
from doubledip.cli.prepare import add_prepare_arguments
from doubledip.errors import ConfigError

__all__ = ["add_parser", "run"]

DEFAULT_METHOD = "hio-er-sw"
_RUN_KEYS = ("method", "seed", "device")
_PREPARE_TABLE = "prepare"
_DEFAULT_PRTF_RUNS = 3


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
        "  doubledip phase planar_cdi_1024.tif -o result.npz --center auto --bin auto --size 256 --starts 16 --prtf\n"
        "  doubledip phase sample.npz -o result.npz --method ddip --checkpoint ck/   (later: ... --resume)\n"
        "run.toml holds options of the method as top-level keys (e.g. beta = 0.8) or in a table\n"
        "named after the method ([hio-er-sw]); it may also set method, seed and device, and hold a\n"
        "[prepare] table of preprocessing options (center = \"auto\", bin = 2, ...).\n"
        "Flags override the file.\n"
        "--prtf: the phase retrieval transfer function over restarts (classical: the --starts starts\n"
        "of the batch; other methods: --prtf-runs independent runs with seeds S, S+1, ..., the best\n"
        "by its free loss kept) is stored in the result (history prtf_q and prtf, config\n"
        "resolution_px = half-period where it drops below 1/e) and drawn to --prtf-figure.",
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
    parser.add_argument("--checkpoint", default=None, metavar="DIR",
                        help="write checkpoints to DIR (methods that support them: ddip)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from --checkpoint DIR (same input, options and seed); "
                             "ends with the result of an uninterrupted run")
    parser.add_argument("--prtf", action="store_true",
                        help="PRTF over restarts and the resolution where it drops below 1/e (see below)")
    parser.add_argument("--prtf-runs", type=int, default=None, metavar="K",
                        help="independent runs for the PRTF of a method without batched starts (default 3)")
    parser.add_argument("--prtf-figure", default=None, metavar="PNG",
                        help="PRTF figure (implies --prtf; default with --prtf: RESULT with suffix _prtf.png)")
    add_prepare_arguments(parser, mask=False)
    parser.set_defaults(run=run)
    return parser


def _read_config(path: str | None) -> tuple[dict, dict, dict, dict]:
    """``(run keys, top-level options, per-method tables, [prepare] table)`` of a TOML file."""
    if not path:
        return {}, {}, {}, {}
    from doubledip.config import load_toml

    data = load_toml(path)
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    prepare = tables.pop(_PREPARE_TABLE, {})
    flat = {k: v for k, v in data.items() if not isinstance(v, dict)}
    run_keys = {k: flat.pop(k) for k in _RUN_KEYS if k in flat}
    return run_keys, flat, tables, prepare


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


def _accepts(solve, name: str) -> bool:
    """Whether ``solve`` takes keyword ``name``."""
    import inspect

    try:
        return name in inspect.signature(solve).parameters
    except (TypeError, ValueError):
        return False


def _is_classical(method) -> bool:
    from doubledip.classical.options import ClassicalOptions

    return isinstance(method.options_cls, type) and issubclass(method.options_cls, ClassicalOptions)


def _check_run_flags(args, method) -> tuple[bool, int | None]:
    """Validate --checkpoint/--resume/--prtf*; returns ``(prtf, runs)`` (runs None: batched starts)."""
    if args.resume and not args.checkpoint:
        raise ConfigError("--resume needs --checkpoint DIR, the folder of the interrupted run")
    if args.checkpoint and not _accepts(method.solve, "checkpoint"):
        raise ConfigError(f"--checkpoint: method '{method.name}' does not write checkpoints (ddip does); "
                          "leave --checkpoint out")
    prtf = bool(args.prtf or args.prtf_figure or args.prtf_runs is not None)
    if args.prtf_figure:
        check_output_path(args.prtf_figure, (".png", ".pdf", ".svg"), what="--prtf-figure")
    if not prtf:
        return False, None
    if _is_classical(method):
        if args.prtf_runs is not None:
            raise ConfigError(f"--prtf-runs does not apply to '{method.name}': its PRTF uses the batch's starts; "
                              "set --starts K instead")
        return True, None
    runs = _DEFAULT_PRTF_RUNS if args.prtf_runs is None else args.prtf_runs
    if runs < 2:
        raise ConfigError(f"--prtf-runs {runs}: the PRTF needs at least 2 runs")
    return True, runs


def _solve(method, measurement, options, *, seed, device, callback, args, runs):
    """``(result, objects or None)``: one run, a batch keeping every start, or ``runs`` runs."""
    from doubledip import resolution

    extra = {}
    if args.checkpoint:
        extra = {"checkpoint": args.checkpoint, "resume": bool(args.resume)}
    if runs is None and not args.prtf_wanted:
        return method.solve(measurement, options, seed=seed, device=device, callback=callback, **extra), None
    if runs is None:
        if options.starts < 2:
            raise ConfigError(f"--prtf needs at least 2 starts; '{method.name}' runs {options.starts}: "
                              "set --starts K (K >= 2)")
        return resolution.classical_starts(measurement, options, seed=seed, device=device, callback=callback,
                                           method=method.name)
    return resolution.repeated_runs(method.solve, measurement, options, runs, seed=seed, device=device,
                                    callback=callback, checkpoint=args.checkpoint, resume=bool(args.resume))


def _prepare(measurement, args, mapping: dict):
    """Apply the preprocessing flags and the [prepare] table (``--mask`` was already read with the input)."""
    from doubledip.cli.prepare import prepare_from_args

    flags = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "mask"})
    return prepare_from_args(measurement, flags, mapping=mapping)


def _r_factor(result, measurement) -> float | None:
    """Fourier R-factor of the result on the measured pixels (far-field pattern grid), or None."""
    import numpy as np

    from doubledip import fft, metrics

    obj = np.asarray(result.object)
    if obj.shape != np.shape(measurement.intensity):
        return None
    amplitude = np.abs(fft.cfft(obj.astype(np.complex128), obj.ndim))
    return float(metrics.r_factor(measurement.intensity, amplitude, measurement.mask))


def run(args) -> int:
    from doubledip import io, resolution
    from doubledip.config import make_options
    from doubledip.methods import get_method, method_names

    run_keys, flat, tables, prepare_table = _read_config(args.config)
    name = args.method or run_keys.get("method") or DEFAULT_METHOD
    method = get_method(str(name))
    known_methods = set(method_names())
    strange = sorted(set(tables) - known_methods)
    if strange:
        raise ConfigError(f"{args.config}: [{strange[0]}] is not a method; tables must be named after one of "
                          f"{', '.join(sorted(known_methods))} (or [{_PREPARE_TABLE}])")
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
    check_output_path(args.output, tuple(io.WRITE_SUFFIXES), what="result")
    args.prtf_wanted, runs = _check_run_flags(args, method)

    measurement = io.read_pattern(args.input, mask=args.mask)
    measurement, prepare_report = _prepare(measurement, args, prepare_table)
    if prepare_report is not None:
        from doubledip.cli.prepare import format_report

        print("prepare: " + format_report(prepare_report).replace("\n", "\nprepare: "))
    progress = _Progress(method.name, enabled=not args.no_progress and sys.stderr.isatty())
    try:
        result, objects = _solve(method, measurement, options, seed=seed, device=str(device), callback=progress,
                                 args=args, runs=runs)
    finally:
        progress.close()
    result.config.setdefault("method", method.name)
    result.config.setdefault("seed", seed)
    result.config.setdefault("input", str(args.input))
    if prepare_report is not None:
        result.config["prepare"] = prepare_report
    r_factor = _r_factor(result, measurement)
    if r_factor is not None:
        result.config["r_factor"] = r_factor
    summary_prtf = None
    if objects is not None:
        summary_prtf = resolution.prtf_summary(objects, measurement)
        resolution.attach_prtf(result, summary_prtf)
    io.write_result(args.output, result)
    figure = None
    if summary_prtf is not None:
        from doubledip.report import save_figure

        figure = Path(args.prtf_figure) if args.prtf_figure else Path(args.output).with_name(
            Path(args.output).stem + "_prtf.png")
        fig = resolution.prtf_figure(summary_prtf["q"], summary_prtf["prtf"], q_cut=summary_prtf["q_cut"],
                                     resolution_px=summary_prtf["resolution_px"],
                                     reconstructions=summary_prtf["reconstructions"],
                                     random=summary_prtf["random_level"],
                                     title=f"{Path(args.output).name}: {method.name}, "
                                           f"{summary_prtf['reconstructions']} reconstructions")
        save_figure(fig, figure)

    summary = [f"wrote {args.output}" + (f" and {figure}" if figure else ""), f"method {method.name}"]
    if "best_start" in result.config and "starts" in result.config:
        summary.append(f"best start {result.config['best_start']} of {result.config['starts']}")
        averaged = result.config.get("averaged_starts") or []
        if len(averaged) > 1:
            summary.append(f"averaged with {len(averaged) - 1} agreeing start(s)")
    if "prtf_chosen_run" in result.config:
        summary.append(f"best run {result.config['prtf_chosen_run']} of {result.config['prtf_runs']}")
    for key in ("free_loss", "loss"):
        values = result.history.get(key)
        if values is not None and len(values):
            summary.append(f"final {key.replace('_', ' ')} {float(values[-1]):.3g}")
            break
    if r_factor is not None:
        summary.append(f"R-factor {r_factor:.4f} on measured pixels")
    summary.append(f"{result.timings.get('total', 0.0):.1f} s")
    print(", ".join(summary))
    if summary_prtf is not None:
        limited = " (never below 1/e: limited by the detector edge)" if result.config["prtf_limited_by_detector"] \
            else ""
        print(f"PRTF over {summary_prtf['reconstructions']} reconstructions drops below 1/e at |q| = "
              f"{summary_prtf['q_cut']:.1f} px of {summary_prtf['q_max']:.1f}{limited}: half-period resolution "
              f"{summary_prtf['resolution_px']:.2f} px")
        if summary_prtf["random_level"] > 0.8 * summary_prtf["threshold"]:
            print(f"doubledip: note: {summary_prtf['reconstructions']} reconstructions with random phases would "
                  f"already give a PRTF of about {summary_prtf['random_level']:.2f}, close to or above 1/e; use "
                  "16 or more restarts for a meaningful resolution", file=sys.stderr)
    guard = result.config.get("support_guard") or {}
    if guard.get("collapsing_starts") or guard.get("exploding_starts"):
        print(f"doubledip: note: shrink-wrap guard acted in {guard.get('collapsing_starts', 0)} start(s) with a "
              f"collapsing and {guard.get('exploding_starts', 0)} with an exploding support; see the result's "
              "history (guard_*_starts)", file=sys.stderr)
    return 0
