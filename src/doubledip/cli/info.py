"""``doubledip info FILE [--mask FILE] [--json]``: what a pattern file holds, or why it is unusable."""

from __future__ import annotations

import json

from doubledip.io import describe, read_pattern

HELP = "describe a pattern file: shape, dtype, counts, mask, centre (or why it is unusable)"


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "info",
        help=HELP,
        description=HELP + ". FILE is .npz, .npy, .h5/.hdf5/.cxi (file.h5:/path/to/data to choose a dataset), "
        ".tif/.tiff or .edf.",
    )
    parser.add_argument("file", metavar="FILE", help="pattern file, or file.h5:/path to choose a dataset")
    parser.add_argument("--mask", metavar="FILE", help="mask file (nonzero = unmeasured) instead of the file's own")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.set_defaults(run=run)
    return parser


def _vector(values, fmt="{:.2f}") -> str:
    return "(" + ", ".join(fmt.format(v) for v in values) + ")"


def format_table(info: dict) -> str:
    """The description of :func:`doubledip.io.describe` as aligned ``name  value`` lines."""
    shape = " x ".join(str(s) for s in info["shape"])
    rows = [
        ("file", info["source"]),
        ("format", info["format"] + (f"  ({info['dataset']})" if info.get("dataset") else "")),
        ("shape", f"{shape}  ({info['ndim']}D, axes {'(Z, Y, X)' if info['ndim'] == 3 else '(Y, X)'})"),
        ("dtype in file", info["dtype"]),
        ("total counts", f"{info['total_counts']:.6g}"),
        ("max counts", f"{info['max_counts']:.6g}"),
        ("masked", f"{100 * info['masked_fraction']:.2f} %  ({info['masked_pixels']} of {info['pixels']} pixels"
                   + (f", mask from {info['mask_source']})" if info.get("mask_source") else ", no mask)")),
        ("zero pixels", f"{100 * info['zero_fraction']:.2f} % of measured pixels"),
    ]
    if info["centre"] is not None:
        rows.append(("centre of mass", f"{_vector(info['centre'])}, offset {_vector(info['centre_offset'], '{:+.2f}')}"
                                       f" from N//2 = {_vector(info['grid_centre'], '{:d}')}"))
    rows.append(("brightest pixel", _vector(info["peak"], "{:d}")))
    rows.append(("ground truth", "yes (simulated sample)" if info["has_object"] else "no"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    if info["warnings"]:
        lines.append("warnings:")
        lines.extend(f"  - {w}" for w in info["warnings"])
    else:
        lines.append("warnings:  none")
    return "\n".join(lines)


def run(args) -> int:
    measurement = read_pattern(args.file, mask=args.mask)
    info = describe(measurement)
    if args.json:
        print(json.dumps(info))
    else:
        print(format_table(info))
    return 0
