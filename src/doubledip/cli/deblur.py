"""``doubledip deblur BLURRY -o SHARP``: blind deblurring with an image DIP and a kernel generator."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from doubledip.cli.options import check_output_path
from doubledip.errors import UserError

__all__ = ["add_parser", "run"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "deblur",
        help="blind deblurring: recover a sharp image and the unknown blur kernel",
        description="Blind deconvolution y = k * x + n with neither the sharp image x nor the kernel k known: "
        "the kernel (nonnegative, sums to one, on an overspecified grid) is estimated coarse to fine with an "
        "l0 gradient prior (three variants, the one that best predicts held-out pixels kept), and the image "
        "is deconvolved with it (total variation, no boundary condition, weight from the estimated noise); "
        "--kernel FILE gives the kernel instead (non-blind).  With --iterations N > 0 a deep image prior for "
        "x and a small network for k, started from that estimate, are then fitted jointly with a data term "
        "suited to the noise.  Reads "
        "png/tif/jpg/npy (gray or colour; one kernel for all channels); writes png/tif/npy, or npz with the "
        "kernel and history.",
        epilog="example: doubledip deblur blurry.png -o sharp.png --kernel-size 35 --kernel-out kernel.png "
        "--noise gaussian --seed 0",
    )
    parser.add_argument("blurry", metavar="BLURRY",
                        help="blurry image (.png/.jpg/.tif/.npy), or a `doubledip simulate blur` .npz")
    parser.add_argument("-o", "--output", required=True, metavar="FILE",
                        help="sharp estimate (.png/.tif/.npy, or .npz with image, kernel, history and config)")
    parser.add_argument("--kernel-size", type=int, default=None, metavar="K",
                        help="upper bound on the kernel side in pixels; overestimate it (default: 35, or a "
                        "quarter of a small image's shorter side)")
    parser.add_argument("--kernel-out", default=None, metavar="FILE",
                        help="also write the kernel estimate (.png scaled to its maximum, .tif/.npy as is)")
    parser.add_argument("--kernel", default=None, metavar="FILE",
                        help="a known kernel (.png/.tif/.npy, square; normalised to sum one): non-blind "
                        "deconvolution with it, nothing estimated")
    parser.add_argument("--noise", choices=["gaussian", "poisson", "impulse"], default="gaussian",
                        help="noise in the image; picks the data term (l2, Poisson likelihood, l1; default gaussian)")
    parser.add_argument("--data-term", choices=["auto", "l2", "huber", "l1", "ssim", "poisson"], default=None,
                        help="override the data term chosen from --noise")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="Adam steps per start of the joint generator fit (0: the l0 kernel estimate only)")
    parser.add_argument("--restarts", type=int, default=None, metavar="R",
                        help="independent starts ranked by their data misfit (default 1)")
    parser.add_argument("--config", default=None, metavar="TOML",
                        help="TOML file setting any option of the [deblur] table (or top level)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed of all random choices (default 0)")
    parser.add_argument("--device", default="cpu", metavar="DEV", help="torch device: cpu or cuda (default cpu)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)
    return parser


def _read_blurry(spec):
    from doubledip.deblur.images import read_image
    from doubledip.errors import DataError

    path = Path(spec)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DataError(path, "no such file", "check the path")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "blurred" not in z.files:
                    raise DataError(path, "holds no 'blurred' array",
                                    "give an image file or a sample written by `doubledip simulate blur`")
                return np.asarray(z["blurred"], np.float32)
        except (OSError, ValueError) as err:
            raise DataError(path, f"cannot be read ({err})", "check that the file is a complete .npz") from None
    return read_image(spec)


def _read_kernel(spec):
    from doubledip.deblur.images import read_image
    from doubledip.deblur.solver import known_kernel
    from doubledip.errors import ConfigError, DataError

    k = read_image(spec, min_side=1)
    if k.ndim == 3:
        k = k.mean(axis=-1)
    try:
        return known_kernel(k)
    except ConfigError as err:
        raise DataError(spec, f"is not a usable kernel: {err}", "give a square, nonnegative kernel image") from None


def _check(args) -> None:
    from doubledip.deblur.images import WRITE_SUFFIXES

    for flag, value, low in (("--iterations", args.iterations, 0), ("--restarts", args.restarts, 1)):
        if value is not None and value < low:
            raise UserError(f"{flag} {value} must be >= {low}")
    if args.kernel_size is not None and args.kernel_size < 3:
        raise UserError(f"--kernel-size {args.kernel_size} is too small; give an upper bound of at least 3 pixels")
    if args.seed < 0:
        raise UserError(f"--seed {args.seed} must be >= 0")
    if args.kernel is not None and (args.iterations or args.kernel_size is not None):
        raise UserError("--kernel gives the kernel, so --iterations and --kernel-size do not apply; drop them")
    check_output_path(args.output, WRITE_SUFFIXES + (".npz",))
    if args.kernel_out is not None:
        check_output_path(args.kernel_out, WRITE_SUFFIXES, what="--kernel-out")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {args.device}: no CUDA device is available; use --device cpu")
    elif args.device != "cpu":
        raise UserError(f"--device {args.device}: unknown device; use cpu or cuda")


def _options(args) -> dict:
    from doubledip.config import load_toml

    values = {}
    if args.config:
        data = load_toml(args.config)
        values.update(data.get("deblur", data))
    values["noise"] = args.noise
    for key in ("kernel_size", "data_term", "iterations", "restarts"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    return values


def _write_npz(path, result) -> None:
    from doubledip.io import atomic_output

    arrays = {"image": result.image, "kernel": result.kernel, "config": np.array(json.dumps(result.config)),
              "seed": np.array(result.seed), "timings": np.array(json.dumps(result.timings))}
    arrays.update({f"history_{k}": v for k, v in result.history.items()})
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def run(args) -> int:
    from tqdm import tqdm

    from doubledip.config import make_options
    from doubledip.deblur.images import write_image
    from doubledip.deblur.solver import DeblurOptions, deblur

    _check(args)
    blurry = _read_blurry(args.blurry)
    kernel = _read_kernel(args.kernel) if args.kernel is not None else None
    if kernel is not None and kernel.shape[0] > min(blurry.shape[:2]):
        raise UserError(f"{args.kernel}: the {kernel.shape[0]}x{kernel.shape[0]} kernel is larger than the image's "
                        f"shorter side {min(blurry.shape[:2])}; crop the kernel to its support")
    options = make_options(DeblurOptions, _options(args), source=args.config or "deblur options")
    if options.kernel_size is not None and options.kernel_size > min(blurry.shape[:2]):
        raise UserError(f"{args.blurry}: kernel size {options.kernel_size} exceeds the image's shorter side "
                        f"{min(blurry.shape[:2])}; give --kernel-size below {min(blurry.shape[:2])}")
    bar = tqdm(total=options.iterations * options.restarts, unit="it", desc="deblur", disable=args.quiet,
               leave=False, dynamic_ncols=True)

    def progress(info):
        bar.n = min(int(info["iteration"]), bar.total)
        bar.set_postfix(loss=f"{info['loss']:.3g}", refresh=False)
        bar.refresh()

    try:
        result = deblur(blurry, options, seed=args.seed, device=args.device, callback=progress, kernel=kernel)
    finally:
        bar.close()
    output = Path(args.output)
    if output.suffix.lower() == ".npz":
        _write_npz(output, result)
    else:
        write_image(output, result.image)
    if args.kernel_out:
        write_image(args.kernel_out, result.kernel, normalise=True)
    shape = "x".join(map(str, blurry.shape))
    k = result.config["kernel_size"]
    choice = result.config["kernel_choice"]
    if kernel is not None:
        factor = (result.config["weight_choice"] or {}).get("factor")
        what = f"the given {k}x{k} kernel" + (f" (TV weight x{factor:g}, chosen by held-out pixels)" if factor else "")
    elif choice:
        what = (f"a {k}x{k} kernel estimate (variant '{choice['chosen']}' of {len(choice['holdout_errors'])}, "
                "chosen by held-out pixels)")
    else:
        what = f"a {k}x{k} kernel estimate"
    print(f"wrote {output}: {shape} image deblurred with {what} "
          f"({result.config['data_term']} data term, {result.config['iterations_run']} iterations, "
          f"{result.timings['total']:.1f} s), seed {args.seed}"
          + (f"; kernel in {args.kernel_out}" if args.kernel_out else ""))
    return 0
