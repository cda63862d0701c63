"""``doubledip simulate``: write a simulated far-field measurement with its ground truth."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from doubledip.errors import UserError

__all__ = ["add_parser", "run"]

SUFFIXES = (".npz", ".cxi")


def add_parser(subparsers) -> argparse.ArgumentParser:
    from doubledip.simulate import KINDS

    parser = subparsers.add_parser(
        "simulate",
        help="simulate a diffraction pattern (crystal2d, crystal3d, cell2d) with its ground truth",
        description="Simulate the far-field diffraction pattern of a synthetic object: a strained crystal "
        "(2D or 3D, optionally with a dislocation) or a biological cell, with Poisson noise, a beamstop "
        "and detector gaps.  The file holds intensity, mask and the ground-truth object on the pattern grid.",
        epilog="example: doubledip simulate crystal2d -o sample.npz --size 64 --photons 1e7 --beamstop 2 --seed 0",
    )
    parser.add_argument("kind", choices=list(KINDS), metavar="KIND", help=f"object kind: {', '.join(KINDS)}")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="output file (.npz or .cxi)")
    parser.add_argument("--size", type=int, default=None, metavar="n",
                        help="object box side in pixels (default 64 in 2D, 32 for crystal3d)")
    parser.add_argument("--pattern-size", type=int, default=None, metavar="N",
                        help="detector side in pixels (default 2*n, oversampling 2)")
    parser.add_argument("--photons", type=float, default=None, metavar="P",
                        help="expected total photon count; Poisson noise (default: noiseless)")
    parser.add_argument("--beamstop", type=float, default=0.0, metavar="R",
                        help="radius in pixels of the masked centre disk (default 0: none)")
    parser.add_argument("--gaps", type=int, default=0, metavar="G",
                        help="masked detector gap lines per axis (default 0)")
    parser.add_argument("--dislocation", action="store_true", help="add a phase vortex (crystal2d only)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the object and noise (default 0)")
    parser.set_defaults(run=run)
    return parser


def _check(args) -> None:
    if args.size is not None and args.size < 4:
        raise UserError(f"--size {args.size} is too small; use an object box of at least 4 pixels")
    if args.pattern_size is not None:
        size = args.size if args.size is not None else (32 if args.kind == "crystal3d" else 64)
        if args.pattern_size < size:
            raise UserError(f"--pattern-size {args.pattern_size} is smaller than the object size {size}; "
                            f"use at least {size} (2*n for oversampling 2)")
    if args.photons is not None and not (np.isfinite(args.photons) and args.photons > 0):
        raise UserError(f"--photons {args.photons:g} must be a positive number of photons (omit it for noiseless data)")
    if not (np.isfinite(args.beamstop) and args.beamstop >= 0):
        raise UserError(f"--beamstop {args.beamstop:g} must be a radius >= 0 pixels")
    if args.gaps < 0:
        raise UserError(f"--gaps {args.gaps} must be >= 0")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be >= 0")
    if args.dislocation and args.kind != "crystal2d":
        raise UserError(f"--dislocation applies to crystal2d only, not {args.kind}")
    output = Path(args.output)
    if output.suffix.lower() not in SUFFIXES:
        raise UserError(f"{output}: unknown output format '{output.suffix}'; use a .npz or .cxi file name")
    if not output.parent.exists():
        raise UserError(f"{output}: the folder {output.parent} does not exist; create it or choose another path")


def run(args) -> int:
    from doubledip import io
    from doubledip.simulate import simulate

    _check(args)
    measurement = simulate(args.kind, args.size, seed=args.seed, pattern_size=args.pattern_size,
                           photons=args.photons, beamstop=args.beamstop, gaps=args.gaps,
                           dislocation=args.dislocation)
    io.write_measurement(args.output, measurement)
    meta = measurement.meta
    shape = "x".join(str(s) for s in measurement.intensity.shape)
    box = "x".join(str(s) for s in meta["object_shape"])
    total = float(measurement.intensity.sum(dtype=np.float64))
    noise = f"Poisson, {args.photons:.3g} photons" if args.photons is not None else "noiseless"
    masked = float(np.count_nonzero(measurement.mask)) / measurement.mask.size
    print(f"wrote {args.output}: {args.kind} pattern {shape} (object box {box}), {noise}, "
          f"total counts {total:.4g}, masked {100 * masked:.2f}%, seed {args.seed}")
    return 0
