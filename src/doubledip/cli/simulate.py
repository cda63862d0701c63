"""``doubledip simulate``: write a simulated far-field measurement (or a blurred image) with its ground truth."""

from __future__ import annotations

import argparse

import numpy as np

from doubledip.cli.options import check_output_path
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
    parser.add_argument("kind", choices=list(KINDS) + ["blur"], metavar="KIND",
                        help=f"object kind: {', '.join(KINDS)}; or blur (a blurred, noisy copy of IMAGE)")
    parser.add_argument("image", nargs="?", default=None, metavar="IMAGE",
                        help="blur only: sharp image (.png/.jpg/.tif/.npy), a scikit-image sample "
                        "skimage:NAME (e.g. skimage:camera) or a matplotlib one mpl:NAME (e.g. mpl:s1045)")
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
    blur = parser.add_argument_group("blur (doubledip simulate blur IMAGE -o blurred.npz ...)")
    blur.add_argument("--kernel", choices=["motion", "gaussian"], default="motion",
                      help="kind of the generated kernel (default motion)")
    blur.add_argument("--kernel-size", type=int, default=25, metavar="K", help="kernel side in pixels (default 25)")
    blur.add_argument("--noise", type=float, default=0.01, metavar="SIGMA",
                      help="noise level: Gaussian std (intensities in [0, 1]), relative Poisson noise at "
                      "intensity 1, or the fraction of impulse pixels (default 0.01)")
    blur.add_argument("--noise-type", choices=["gaussian", "poisson", "impulse"], default="gaussian",
                      help="noise model (default gaussian)")
    parser.set_defaults(run=run)
    return parser


def _check_blur(args) -> None:
    if args.image is None:
        raise UserError("simulate blur needs an IMAGE: a file or a sample such as skimage:camera or mpl:s1045")
    if args.size is not None and args.size < 8:
        raise UserError(f"--size {args.size} is too small; use at least 8 pixels")
    if args.kernel_size < 1:
        raise UserError(f"--kernel-size {args.kernel_size} must be >= 1")
    if not (np.isfinite(args.noise) and args.noise >= 0) or (args.noise_type == "impulse" and args.noise > 1):
        raise UserError(f"--noise {args.noise:g} must be >= 0 (a fraction <= 1 for impulse noise)")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be >= 0")
    check_output_path(args.output, (".npz",), what="blur sample")


def _run_blur(args) -> int:
    import json

    from doubledip.deblur.images import read_image
    from doubledip.deblur.kernels import make_kernel
    from doubledip.deblur.model import degrade
    from doubledip.io import atomic_output

    _check_blur(args)
    image = read_image(args.image)
    if args.size is not None:
        from skimage.transform import resize

        h, w = image.shape[:2]
        factor = args.size / min(h, w)
        shape = (max(args.size, round(h * factor)), max(args.size, round(w * factor))) + image.shape[2:]
        image = resize(image, shape, anti_aliasing=factor < 1).astype(np.float32)
        top, left = (shape[0] - args.size) // 2, (shape[1] - args.size) // 2
        image = image[top:top + args.size, left:left + args.size]
    image = np.clip(image, 0, 1).astype(np.float32)
    if args.kernel_size > min(image.shape[:2]) // 2:
        raise UserError(f"--kernel-size {args.kernel_size} is too large for a {image.shape[0]}x{image.shape[1]} "
                        f"image; use at most {min(image.shape[:2]) // 2}")
    rng = np.random.default_rng(args.seed)
    kernel = make_kernel(args.kernel, args.kernel_size, rng=rng)
    blurred = degrade(image, kernel, noise=args.noise, noise_type=args.noise_type, rng=rng)
    meta = {"kind": "blur", "source": str(args.image), "kernel": args.kernel, "kernel_size": int(kernel.shape[0]),
            "noise": args.noise, "noise_type": args.noise_type, "seed": args.seed,
            "boundary": "symmetric extension, valid convolution"}
    with atomic_output(args.output) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, blurred=blurred, image=image, kernel=kernel, meta=np.array(json.dumps(meta)))
    shape = "x".join(map(str, image.shape))
    print(f"wrote {args.output}: {shape} image blurred by a {args.kernel} kernel {kernel.shape[0]}x{kernel.shape[1]}, "
          f"{args.noise_type} noise {args.noise:g}, seed {args.seed}")
    return 0


def _check(args) -> None:
    if args.image is not None:
        raise UserError(f"simulate {args.kind} takes no IMAGE argument (got '{args.image}'); only blur does")
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
    check_output_path(args.output, SUFFIXES)


def run(args) -> int:
    from doubledip import io
    from doubledip.simulate import simulate

    if args.kind == "blur":
        return _run_blur(args)
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
