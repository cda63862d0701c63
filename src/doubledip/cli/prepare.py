"""``doubledip prepare INPUT -o prepared.npz``: centre, mask, crop/pad, bin and threshold a detector pattern.

Other commands (``phase``) offer the same options with :func:`add_prepare_arguments`
and apply them with :func:`prepare_from_args`.
"""

from __future__ import annotations

import json

from doubledip.cli.options import check_output_path
from doubledip.errors import ConfigError

__all__ = ["add_parser", "run", "add_prepare_arguments", "options_from_args", "prepare_from_args", "format_report"]

HELP = "centre, mask, crop/pad, bin and threshold a detector pattern for phase retrieval"
SUFFIXES = (".npz", ".cxi")
_DESTS = ("center", "size", "bin", "bin_mask", "oversampling", "mask", "mask_zeros", "mask_negative",
          "mask_saturated", "mask_gaps", "mask_dilate", "threshold")


def add_prepare_arguments(parser, *, center_default: str | None = None, mask: bool = True):
    """Add the preprocessing options to ``parser`` (an argument group "preprocessing").

    Values are parsed by :func:`options_from_args` so that a bad value is a
    one-line error.  ``center_default`` is the ``--center`` default (None: the
    pattern is taken as centred); ``mask=False`` leaves out ``--mask`` for a
    command that already has one.
    """
    group = parser.add_argument_group("preprocessing (see 'doubledip prepare --help')")
    group.add_argument("--center", "--centre", dest="center", metavar="auto|com|friedel|none|Y,X",
                       default=center_default,
                       help="find the zero frequency and shift it to N//2: centre of mass (com), best "
                            "Friedel symmetry (friedel), friedel when the pattern is centro-symmetric else com "
                            "(auto), none, or a position Y,X (Z,Y,X) in input pixels "
                            f"(default: {center_default or 'none'})")
    group.add_argument("--size", metavar="N[,M]", help="output size after binning: crop or pad (padding masked), "
                                                       "centre kept at N//2 (default: input size / bin)")
    group.add_argument("--bin", metavar="K|auto", help="sum K^d blocks of pixels; 'auto': largest K that keeps the "
                                                        "estimated oversampling >= --oversampling (default 1)")
    group.add_argument("--bin-mask", metavar="any|majority",
                       help="a binned pixel is masked if any (default) or more than half of its pixels are")
    group.add_argument("--oversampling", metavar="S", help="target oversampling for --bin auto (default 2.5)")
    if mask:
        group.add_argument("--mask", metavar="FILE", help="mask file (nonzero = unmeasured), added to the "
                                                          "pattern's own mask")
    group.add_argument("--mask-zeros", action="store_true", default=None,
                       help="treat zero pixels as unmeasured (dead pixels, gaps); leave it off when zeros are "
                            "weak signal")
    group.add_argument("--mask-negative", action="store_true", default=None, help="treat negative pixels as unmeasured")
    group.add_argument("--mask-saturated", metavar="LEVEL", help="treat pixels >= LEVEL counts as unmeasured")
    group.add_argument("--mask-gaps", action="store_true", default=None,
                       help="mask whole detector rows/columns (planes in 3D) without counts")
    group.add_argument("--mask-dilate", metavar="K", help="grow the mask by K pixels")
    group.add_argument("--threshold", metavar="T", help="background: measured values below T become 0 (measured zeros)")
    return group


def _number(text, name: str, kind=float):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        noun = "an integer" if kind is int else "a number"
        raise ConfigError(f"--{name.replace('_', '-')} {text!r}: expected {noun}") from None
    return value


def _numbers(text, name: str, kind=float) -> tuple:
    parts = [p for p in str(text).replace(" ", "").split(",") if p]
    if not parts:
        raise ConfigError(f"--{name} {text!r}: expected comma-separated numbers")
    return tuple(_number(p, name, kind) for p in parts)


def options_from_args(args, mapping: dict | None = None):
    """:class:`~doubledip.preprocess.PrepareOptions` from parsed arguments (given options
    override ``mapping``, e.g. a ``[prepare]`` TOML table).

    Raises
    ------
    ConfigError
        A value that does not parse or is out of range (one line).
    """
    from doubledip.preprocess import CENTRE_METHODS, prepare_options

    values: dict = {}
    center = getattr(args, "center", None)
    if center is not None:
        text = str(center).strip().lower()
        if text in CENTRE_METHODS:
            values["center"] = text
        elif text != "none":
            try:
                values["center"] = _numbers(text, "center")
            except ConfigError:
                raise ConfigError(f"--center {center!r}: expected auto, com, friedel, none or a position Y,X") from None
    if getattr(args, "size", None) is not None:
        size = _numbers(args.size, "size", int)
        values["size"] = size[0] if len(size) == 1 else size
    if getattr(args, "bin", None) is not None:
        values["bin"] = "auto" if str(args.bin).strip().lower() == "auto" else _number(args.bin, "bin", int)
    if getattr(args, "bin_mask", None) is not None:
        values["bin_mask"] = str(args.bin_mask)
    if getattr(args, "oversampling", None) is not None:
        values["oversampling"] = _number(args.oversampling, "oversampling")
    if getattr(args, "mask", None) is not None:
        values["mask"] = str(args.mask)
    for flag in ("mask_zeros", "mask_negative", "mask_gaps"):
        if getattr(args, flag, None):
            values[flag] = True
    if getattr(args, "mask_saturated", None) is not None:
        values["mask_saturated"] = _number(args.mask_saturated, "mask_saturated")
    if getattr(args, "mask_dilate", None) is not None:
        values["mask_dilate"] = _number(args.mask_dilate, "mask_dilate", int)
    if getattr(args, "threshold", None) is not None:
        values["threshold"] = _number(args.threshold, "threshold")
    merged = dict(mapping or {})
    merged.update(values)
    try:
        return prepare_options(merged, source="preprocessing")
    except ConfigError as err:
        text = str(err).replace("preprocessing: ", "", 1)
        raise ConfigError(f"preprocessing option: {text}") from None


def prepare_from_args(measurement, args, mapping: dict | None = None):
    """Apply the preprocessing options of ``args`` to ``measurement``.

    Returns ``(measurement, report)``; when no preprocessing option is set the
    measurement comes back untouched and the report is None.
    """
    from doubledip.preprocess import PrepareOptions, prepare

    options = options_from_args(args, mapping)
    if options == PrepareOptions():
        return measurement, None
    return prepare(measurement, options)


def _vec(values, fmt="{:.2f}") -> str:
    return "(" + ", ".join(fmt.format(v) for v in values) + ")"


def format_report(report: dict) -> str:
    """The report of :func:`doubledip.preprocess.prepare` as a few readable lines."""
    shape_in = " x ".join(str(s) for s in report["input_shape"])
    shape_out = " x ".join(str(s) for s in report["output_shape"])
    centre = f"centre: {_vec(report['centre'])} in input pixels, {report['centre_method']}"
    if report.get("friedel_score") is not None:
        centre += f" (Friedel symmetry score {report['friedel_score']:.3f}"
        if report.get("friedel") is not None and "friedel" not in report["centre_method"]:
            centre += f" at {_vec(report['friedel'])}"
        centre += ")"
    if report.get("com") is not None and "com" not in report["centre_method"]:
        centre += f"; centre of mass {_vec(report['com'])}"
    masked = report["masked"]
    sources = ", ".join(f"{k} {v}" for k, v in masked.items()
                        if k not in ("total", "output", "output_fraction", "padding") and (v or k == "input"))
    lines = [
        centre,
        f"grid: {shape_in} -> window start {_vec(report['window_start'], '{:d}')}, bin {report['bin']} -> "
        f"{shape_out}; zero frequency at N//2 {_vec(report['residual_offset'], '{:+.2f}')} output pixels",
        f"masked: input grid {masked['total']} pixels ({sources}); output {masked['output']} pixels "
        f"({100 * masked['output_fraction']:.2f} %, {masked['padding']} from padding)",
        f"counts: {report['total_counts_in']:.6g} measured in, {report['total_counts_out']:.6g} out "
        f"({report['dropped_counts']:.6g} outside the window)"
        + (f", {report['thresholded']} pixels below the threshold set to 0" if report["thresholded"] else ""),
    ]
    if report.get("oversampling"):
        line = f"oversampling (estimated from the autocorrelation): {_vec(report['oversampling'])}"
        if report.get("oversampling_in"):
            line += f", input {_vec(report['oversampling_in'])}"
        lines.append(line)
    if report.get("object"):
        lines.append(f"ground-truth object: {report['object']}")
    return "\n".join(lines)


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "prepare",
        help=HELP,
        description=HELP + ". Masks are found on the raw values, then the threshold, the centre, one window "
        "(shift + crop/pad) and the binning are applied; the report is stored in the output's meta.",
        epilog="example: doubledip prepare planar_cdi_1024.tif -o prepared.npz --center auto --bin 2 "
        "--figure prepared.png",
    )
    parser.add_argument("input", metavar="INPUT", help="pattern file (.npz .npy .h5 .cxi .tif .edf; file.h5:/path)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="prepared measurement (.npz or .cxi)")
    parser.add_argument("--figure", metavar="PNG", help="write the input and prepared patterns with the mask")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    add_prepare_arguments(parser, center_default="auto")
    parser.set_defaults(run=run)
    return parser



def run(args) -> int:
    from doubledip import io
    from doubledip.preprocess import prepare, prepare_figure

    check_output_path(args.output, SUFFIXES)
    if args.figure:
        check_output_path(args.figure, (".png", ".pdf", ".svg"), what="figure")
    options = options_from_args(args)
    measurement = io.read_pattern(args.input)
    prepared, report = prepare(measurement, options)
    io.write_measurement(args.output, prepared)
    if args.figure:
        from doubledip.report import save_figure

        save_figure(prepare_figure(measurement, prepared, report), args.figure)
    if args.json:
        print(json.dumps(report))
    else:
        print(format_report(report))
        print(f"wrote {args.output}" + (f" and {args.figure}" if args.figure else ""))
    return 0
