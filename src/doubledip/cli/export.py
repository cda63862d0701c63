"""``doubledip export RESULT -o result.vti``: a reconstruction as VTK image data for ParaView."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from doubledip.cli.options import check_output_path
from doubledip.errors import ConfigError

__all__ = ["add_parser", "run"]

HELP = "write a result as VTK image data (.vti) with magnitude, phase, support (and Bragg displacement)"
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")


def add_parser(subparsers):
    parser = subparsers.add_parser(
        "export",
        help=HELP,
        description=HELP + ", for ParaView. VTK axes x, y, z are the array axes X, Y, Z; index N//2 sits at "
        "coordinate 0. Post-processing flags run before writing, in the order ramp, apodize, centre, phase.",
        epilog="example: doubledip export result.npz -o crystal.vti --remove-ramp --centre --zero-phase "
        "--bragg 0,0,2.67 --voxel-size 5 --unwrap --figure crystal.png",
    )
    parser.add_argument("result", metavar="RESULT", help="result file written by doubledip (.npz or .cxi)")
    parser.add_argument("-o", "--output", required=True, metavar="FILE.vti", help="output VTK image data file")
    parser.add_argument("--bragg", metavar="QX,QY,QZ",
                        help="Bragg vector G in inverse Angstrom with the 2*pi (|G| = 2*pi/d_hkl), or |G| alone: "
                             "adds 'displacement' = phase/|G| in Angstrom (phase = G.u; NaN outside the support)")
    parser.add_argument("--voxel-size", metavar="V|Z,Y,X", default="1",
                        help="voxel size (one value or one per axis, e.g. in nm; default 1 = pixels)")
    parser.add_argument("--unwrap", action="store_true", help="unwrap the phase inside the support (least squares) "
                                                             "for the displacement")
    parser.add_argument("--flip-sign", action="store_true", help="displacement = -phase/|G| (phase = -G.u convention, "
                                                                 "or the twin image)")
    parser.add_argument("--centre", "--center", dest="centre", action="store_true",
                        help="move the centre of mass of the magnitude to N//2 (whole pixels)")
    parser.add_argument("--remove-ramp", action="store_true", help="remove the linear phase ramp (do it for Bragg)")
    parser.add_argument("--zero-phase", action="store_true", help="global phase so the mean phase in the support is 0")
    parser.add_argument("--apodize", metavar="tukey|hann|gaussian", help="multiply the spectrum by a window")
    parser.add_argument("--support-threshold", metavar="T",
                        help="re-estimate the support as |x| > T * max (default: the result's support)")
    parser.add_argument("--crop", metavar="MARGIN", help="keep only the support's bounding box plus MARGIN voxels")
    parser.add_argument("--figure", metavar="PNG", help="central-slice figure (and FIGURE_displacement.png "
                                                        "with --bragg)")
    parser.set_defaults(run=run)
    return parser


def _floats(text, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).replace(" ", "").split(",") if v)
    except ValueError:
        values = ()
    if not values or not all(np.isfinite(values)):
        raise ConfigError(f"--{name} {text!r}: expected a number or comma-separated numbers")
    return values


def run(args) -> int:
    from doubledip import io
    from doubledip.export import displacement_figure, export_vti
    from doubledip.postprocess import WINDOWS, postprocess, support_from_magnitude

    output = check_output_path(args.output, (".vti",))
    figure = check_output_path(args.figure, FIGURE_SUFFIXES, what="figure") if args.figure else None
    bragg = _floats(args.bragg, "bragg") if args.bragg is not None else None
    if bragg is not None and (len(bragg) not in (1, 3) or not np.linalg.norm(bragg) > 0):
        raise ConfigError(f"--bragg {args.bragg!r}: give QX,QY,QZ or |G| (nonzero, inverse Angstrom)")
    voxel = _floats(args.voxel_size, "voxel-size")
    if not all(v > 0 for v in voxel):
        raise ConfigError(f"--voxel-size {args.voxel_size!r}: voxel sizes must be positive")
    if args.apodize is not None and args.apodize not in WINDOWS:
        raise ConfigError(f"--apodize {args.apodize!r}: known windows are {', '.join(WINDOWS)}")
    threshold = _floats(args.support_threshold, "support-threshold")[0] if args.support_threshold else None
    if threshold is not None and not 0 < threshold < 1:
        raise ConfigError(f"--support-threshold {args.support_threshold!r}: must lie between 0 and 1")
    crop = None
    if args.crop is not None:
        try:
            crop = int(args.crop)
        except ValueError:
            raise ConfigError(f"--crop {args.crop!r}: expected a margin in voxels (an integer >= 0)") from None
        if crop < 0:
            raise ConfigError(f"--crop {args.crop!r}: the margin must be >= 0")

    result = io.read_result(args.result)
    obj = result.object
    if len(voxel) not in (1, obj.ndim):
        raise ConfigError(f"--voxel-size {args.voxel_size!r}: give 1 or {obj.ndim} values for a {obj.ndim}D object")
    support = result.support
    if threshold is not None or not support.any():
        support = support_from_magnitude(obj, threshold=threshold or 0.1)
    processed = postprocess(obj, support=support, centre=args.centre, remove_ramp=args.remove_ramp,
                            zero_phase=args.zero_phase, apodization=args.apodize)
    voxel_size = voxel[0] if len(voxel) == 1 else voxel
    export_vti(output, processed.object, support=processed.support, voxel_size=voxel_size, bragg=bragg,
               unwrap=args.unwrap, sign=-1.0 if args.flip_sign else 1.0, crop=crop)

    shape = " x ".join(str(s) for s in obj.shape)
    arrays = "magnitude, phase, support" + (", displacement" if bragg is not None else "")
    print(f"wrote {output}: {shape} object ({arrays}), voxel size {', '.join(f'{v:g}' for v in voxel)}"
          + (f", cropped to the support + {crop}" if crop is not None else ""))
    if processed.steps:
        print("post-processing: " + ", ".join(processed.steps)
              + (f"; ramp removed {tuple(round(g, 4) for g in processed.ramp)} rad/pixel" if args.remove_ramp else ""))
    if bragg is not None:
        norm = float(np.linalg.norm(bragg))
        print(f"Bragg |G| = {norm:.4g} 1/A (d = {2 * np.pi / norm:.4g} A); displacement = "
              f"{'-' if args.flip_sign else ''}phase/|G| in A, {'unwrapped' if args.unwrap else 'wrapped'} phase")
        if not args.remove_ramp:
            print("note: the phase ramp was not removed; add --remove-ramp unless the ramp is real strain")
    if figure is not None:
        from doubledip.export import displacement_field
        from doubledip.report import result_figure, save_figure

        save_figure(result_figure(processed.object, support=processed.support, history=result.history,
                                  title=f"{Path(args.result).name}"), figure)
        print(f"wrote {figure}")
        if bragg is not None:
            u = displacement_field(processed.object, bragg, support=processed.support, unwrap=args.unwrap,
                                   sign=-1.0 if args.flip_sign else 1.0)
            extra = figure.with_name(f"{figure.stem}_displacement{figure.suffix}")
            save_figure(displacement_figure(u, title=f"{Path(args.result).name}: u_G"), extra)
            print(f"wrote {extra}")
    return 0
