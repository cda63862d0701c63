"""``doubledip show RESULT [-o fig.png]``: a figure of any result file."""

from __future__ import annotations

from pathlib import Path

from doubledip import io, report


def add_parser(sub):
    p = sub.add_parser(
        "show",
        help="figure of a result: magnitude, phase, complex view (3D: central slices), loss history",
        description="Draw a result file (.npz or .cxi): 2D magnitude, phase and complex view; 3D three central "
        "slices and a projection; the loss history.",
    )
    p.add_argument("result", help="result file written by `doubledip phase` (.npz or .cxi)")
    p.add_argument("-o", "--output", help="figure file (.png, .pdf, .svg); default RESULT with suffix .png")
    p.add_argument("--no-crop", action="store_true", help="show the whole pattern grid, not the support's box")
    p.set_defaults(run=run)


def run(args) -> int:
    result = io.read_result(args.result)
    out = Path(args.output) if args.output else Path(args.result).with_suffix(".png")
    method = result.config.get("method", "")
    title = f"{Path(args.result).name}" + (f" - {method}, seed {result.seed}" if method else "")
    curves = {k: v for k, v in result.history.items() if not k.startswith("prtf")}  # the PRTF is not a loss
    fig = report.result_figure(
        result.object, support=result.support, history=curves, title=title, crop=not args.no_crop
    )
    report.save_figure(fig, out)
    print(f"wrote {out}")
    return 0
