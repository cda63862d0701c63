"""``doubledip evaluate RESULT --truth SAMPLE``: symmetry-adjusted errors and R-factor of a reconstruction.

With a blur sample (``doubledip simulate blur``) as the truth, RESULT is a deblurred image
(png/tif/npy, or the .npz of ``doubledip deblur``) and the numbers are PSNR and SSIM after the
best sub-pixel alignment and the kernel error (:mod:`doubledip.deblur.evaluation`).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

from doubledip.errors import DataError

__all__ = ["add_parser", "run", "evaluate", "evaluate_data", "evaluate_deblur"]


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "evaluate",
        help="compare a reconstruction with the ground truth of a simulated sample",
        description="Symmetry-adjusted error of a reconstruction against the true object of a simulated "
        "sample (global phase, translation and twin image for far-field data; global phase only for "
        "Fresnel and Gaussian data), the same with the optimal complex scale, and the Fourier R-factor "
        "and amplitude error against the sample's pattern on measured pixels.",
        epilog="examples:\n  doubledip evaluate result.npz --truth sample.npz --json\n"
        "  doubledip evaluate result.npz --data prepared.npz      (real data: no truth)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("result", metavar="RESULT",
                        help="result file (.npz/.cxi from `doubledip phase`), or a sample file with an object")
    parser.add_argument("--truth", default=None, metavar="SAMPLE",
                        help="simulated sample holding the ground-truth object (`doubledip simulate`)")
    parser.add_argument("--data", default=None, metavar="PATTERN",
                        help="without --truth (real data): the pattern the result was reconstructed from (after "
                        "`doubledip prepare`, same grid); prints the Fourier R-factor and amplitude error on its "
                        "measured pixels only")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--subpixel", action="store_true", help="refine the translation below one pixel")
    parser.add_argument("--kernel", default=None, metavar="FILE",
                        help="deblurring only: kernel estimate (.png/.tif/.npy) for the kernel error "
                        "(an .npz from `doubledip deblur` carries its own)")
    parser.set_defaults(run=run)
    return parser


def _read_estimate(spec):
    """(object, config, seed) from a result file, or from a sample file holding an object."""
    from doubledip import io

    try:
        result = io.read_result(spec)
    except DataError as result_error:
        try:
            sample = io.read_pattern(spec)
        except DataError:
            raise result_error from None
        if sample.object is None:
            raise DataError(spec, "is neither a result nor a sample with a ground-truth object",
                            "give a result of `doubledip phase` or a sample of `doubledip simulate`") from None
        meta = sample.meta or {}
        return sample.object, {"method": "sample", "model": meta.get("model", "farfield")}, meta.get("seed")
    return result.object, dict(result.config), result.seed


def _model_name(config: dict, meta: dict) -> tuple[str, dict]:
    """The forward model a result was fitted with: ``config['model']`` (name or table), else the sample's."""
    model = config.get("model")
    if model is None and isinstance(config.get("options"), dict):
        model = config["options"].get("model")
    params = {}
    if isinstance(model, dict):
        params = {k: v for k, v in model.items() if k != "name"}
        model = model.get("name")
    if model is None:
        model = meta.get("model", "farfield")
    return str(model).lower(), params


def _model_amplitude(obj, name: str, params: dict, config: dict):
    from doubledip import fft
    from doubledip.physics import Fresnel

    if name in ("farfield", "far-field", "fraunhofer"):
        return np.abs(fft.cfft(obj.astype(np.complex128), obj.ndim))
    if name == "fresnel":
        chirp = params.get("chirp", config.get("chirp"))
        return np.abs(Fresnel(obj.shape, obj.shape, chirp=chirp).amplitude(obj.astype(np.complex64)))
    return None


def evaluate(result_spec, truth_spec, *, subpixel: bool = False) -> dict:
    """All the numbers ``doubledip evaluate`` prints, as a JSON-serialisable dict."""
    from doubledip import io, metrics

    estimate, config, seed = _read_estimate(result_spec)
    sample = io.read_pattern(truth_spec)
    if sample.object is None:
        raise DataError(truth_spec, "holds no ground-truth object",
                        "pass a simulated sample (`doubledip simulate`) as --truth")
    truth = sample.object
    if estimate.shape != truth.shape:
        raise DataError(result_spec, f"object shape {'x'.join(map(str, estimate.shape))} does not match the "
                        f"truth's {'x'.join(map(str, truth.shape))}",
                        "evaluate against the sample the result was reconstructed from")
    if not np.all(np.isfinite(estimate)):
        raise DataError(result_spec, "object holds NaN or Inf values", "the reconstruction diverged; run it again")
    if not np.any(truth):
        raise DataError(truth_spec, "ground-truth object is zero everywhere", "simulate the sample again")
    model, params = _model_name(config, sample.meta or {})
    try:
        symmetries = metrics.symmetries_for(model)
    except ValueError as err:
        raise DataError(result_spec, str(err), "set 'model' in the result's config to a known model") from None
    plain = metrics.alignment(truth, estimate, symmetries=symmetries, subpixel=subpixel)
    scaled = metrics.alignment(truth, estimate, symmetries=symmetries, scale=True, subpixel=subpixel)
    out = {
        "result": str(result_spec),
        "truth": str(truth_spec),
        "method": config.get("method"),
        "seed": seed,
        "model": model,
        "symmetries": list(symmetries),
        "sa_error": plain.error,
        "sa_error_scaled": scaled.error,
        "shift": list(plain.shift),
        "conjugate": plain.conjugate,
        "phase": float(np.angle(plain.factor)),
        "scale": abs(scaled.factor),
        "subpixel": bool(subpixel),
        "r_factor": None,
        "amplitude_error": None,
    }
    amplitude = _model_amplitude(estimate, model, params, config)
    if amplitude is not None and amplitude.shape == sample.intensity.shape:
        out["r_factor"] = metrics.r_factor(sample.intensity, amplitude, sample.mask)
        out["amplitude_error"] = metrics.amplitude_error(sample.intensity, amplitude, sample.mask)
    out["measured_fraction"] = float(np.count_nonzero(sample.mask == 0)) / sample.mask.size
    return out


def evaluate_data(result_spec, data_spec) -> dict:
    """Fourier R-factor and amplitude error of a far-field result against a measured pattern (no truth)."""
    from doubledip import io, metrics

    estimate, config, seed = _read_estimate(result_spec)
    data = io.read_pattern(data_spec)
    if estimate.shape != data.intensity.shape:
        raise DataError(result_spec, f"object grid {'x'.join(map(str, estimate.shape))} does not match the "
                        f"pattern's {'x'.join(map(str, data.intensity.shape))}",
                        "give the (prepared) pattern the result was reconstructed from as --data")
    if not np.all(np.isfinite(estimate)):
        raise DataError(result_spec, "object holds NaN or Inf values", "the reconstruction diverged; run it again")
    model, params = _model_name(config, {})
    amplitude = _model_amplitude(estimate, model, params, config)
    if amplitude is None:
        raise DataError(result_spec, f"no Fourier amplitude for the '{model}' model", "evaluate a far-field result")
    return {
        "result": str(result_spec), "data": str(data_spec), "method": config.get("method"), "seed": seed,
        "model": model,
        "r_factor": metrics.r_factor(data.intensity, amplitude, data.mask),
        "amplitude_error": metrics.amplitude_error(data.intensity, amplitude, data.mask),
        "measured_fraction": float(np.count_nonzero(data.mask == 0)) / data.mask.size,
        "resolution_px": config.get("resolution_px"),
        "prtf_reconstructions": config.get("prtf_reconstructions"),
    }


def _data_table(r: dict) -> str:
    method = f"{r['method']}, seed {r['seed']}" if r["method"] is not None else f"seed {r['seed']}"
    rows = [
        ("r_factor", r["r_factor"], f"sum|sqrt(I) - s|F x|| / sum sqrt(I), {100 * r['measured_fraction']:.1f}% "
                                    "pixels measured"),
        ("amplitude_error", r["amplitude_error"], "relative L2 of the same residual"),
    ]
    if r.get("resolution_px") is not None:
        rows.append(("resolution_px", r["resolution_px"],
                     f"PRTF half-period over {r['prtf_reconstructions']} reconstructions (from the result)"))
    lines = [f"{r['result']} ({method}) against the pattern {r['data']}, {r['model']} model (no ground truth)"]
    lines += [f"  {name:<16} {_fmt(value):>10}   {note}" for name, value, note in rows]
    return "\n".join(lines)


def _is_blur_sample(spec) -> bool:
    from pathlib import Path

    path = Path(str(spec))
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:
            return "blurred" in z.files and "image" in z.files
    except (OSError, ValueError):
        return False


def evaluate_deblur(result_spec, truth_spec, *, kernel_spec=None) -> dict:
    """Aligned PSNR/SSIM (and kernel error) of a deblurred image against a blur sample's truth."""
    from pathlib import Path

    from doubledip.deblur.evaluation import aligned_scores
    from doubledip.deblur.images import read_image

    with np.load(truth_spec, allow_pickle=False) as z:
        truth, blurred = z["image"].astype(np.float32), z["blurred"].astype(np.float32)
        kernel = z["kernel"].astype(np.float64) if "kernel" in z.files else None
    kernel_estimate, config, seed = None, {}, None
    path = Path(str(result_spec))
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DataError(path, "no such file", "check the path")
        with np.load(path, allow_pickle=False) as z:
            name = "image" if "image" in z.files else ("blurred" if "blurred" in z.files else None)
            if name is None:
                raise DataError(path, "holds no 'image' array", "give the output of `doubledip deblur` or an image")
            estimate = z[name].astype(np.float32)
            if "kernel" in z.files:
                kernel_estimate = z["kernel"]
            if "config" in z.files:
                config = json.loads(str(z["config"]))
            if "seed" in z.files:
                seed = int(z["seed"])
    else:
        estimate = read_image(result_spec)
    if kernel_spec is not None:
        kernel_estimate = read_image(kernel_spec)
        if kernel_estimate.ndim != 2:
            raise DataError(kernel_spec, "is not a 2D kernel", "give the gray kernel image of `doubledip deblur`")
    if estimate.shape != truth.shape:
        raise DataError(result_spec, f"image shape {'x'.join(map(str, estimate.shape))} does not match the "
                        f"truth's {'x'.join(map(str, truth.shape))}",
                        "evaluate against the sample the image was deblurred from")
    scores = aligned_scores(truth, estimate, kernel=kernel, kernel_estimate=kernel_estimate)
    blurry = aligned_scores(truth, blurred, kernel=kernel, crop=scores["crop"])
    return {"result": str(result_spec), "truth": str(truth_spec), "method": config.get("method"), "seed": seed,
            "model": "blur", "psnr": scores["psnr"], "ssim": scores["ssim"], "kernel_error": scores["kernel_error"],
            "shift": scores["shift"], "crop": scores["crop"], "psnr_blurry": blurry["psnr"],
            "ssim_blurry": blurry["ssim"]}


def _deblur_table(r: dict) -> str:
    rows = [
        ("psnr", r["psnr"], f"dB after sub-pixel alignment, {r['crop']} px border left out "
                            f"(blurry input: {r['psnr_blurry']:.2f})"),
        ("ssim", r["ssim"], f"the same (blurry input: {r['ssim_blurry']:.4f})"),
        ("kernel_error", r["kernel_error"], "relative L2 after alignment"),
    ]
    lines = [f"{r['result']} against {r['truth']}, blur model"]
    lines += [f"  {name:<16} {_fmt(value):>10}   {note}" for name, value, note in rows]
    lines.append("  alignment: shift (" + ", ".join(f"{s:.2f}" for s in r["shift"]) + ") px")
    return "\n".join(lines)


def _fmt(value) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and (value == 0 or 1e-3 <= abs(value) < 1e4):
        return f"{value:.4f}"
    return f"{value:.3e}"


def _table(r: dict) -> str:
    what = {"phase": "global phase", "translation": "translation", "conjugate": "twin image"}
    sym = ", ".join(what[s] for s in r["symmetries"])
    shift = ", ".join(f"{s:g}" for s in r["shift"])
    method = f"{r['method']}, seed {r['seed']}" if r["method"] is not None else f"seed {r['seed']}"
    rows = [
        ("sa_error", r["sa_error"], f"relative L2 error after {sym}"),
        ("sa_error_scaled", r["sa_error_scaled"], "the same with the optimal complex scale"),
        ("r_factor", r["r_factor"], f"sum|sqrt(I) - s|F x|| / sum sqrt(I), {100 * r['measured_fraction']:.1f}% "
                                    "pixels measured"),
        ("amplitude_error", r["amplitude_error"], "relative L2 of the same residual"),
    ]
    lines = [f"{r['result']} ({method}) against {r['truth']}, {r['model']} model"]
    lines += [f"  {name:<16} {_fmt(value):>10}   {note}" for name, value, note in rows]
    details = [f"shift ({shift}) px"] if "translation" in r["symmetries"] else []
    if "conjugate" in r["symmetries"]:
        details.append(f"twin image {'used' if r['conjugate'] else 'not used'}")
    details += [f"phase {math.degrees(r['phase']):.1f} deg", f"scale {r['scale']:.4g}"]
    lines.append("  alignment: " + ", ".join(details))
    return "\n".join(lines)


def run(args) -> int:
    from doubledip.errors import UserError

    if args.truth is None and args.data is None:
        raise UserError("evaluate needs --truth SAMPLE (simulated data) or --data PATTERN (real data)")
    if args.truth is not None and args.data is not None:
        raise UserError("give --truth SAMPLE or --data PATTERN, not both (with --truth the R-factor uses the "
                        "sample's own pattern)")
    if args.truth is None:
        out = evaluate_data(args.result, args.data)
        table = _data_table
    elif _is_blur_sample(args.truth):
        out = evaluate_deblur(args.result, args.truth, kernel_spec=args.kernel)
        table = _deblur_table
    else:
        out = evaluate(args.result, args.truth, subpixel=args.subpixel)
        table = _table
    if args.json:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in out.items()}
        print(json.dumps(clean, allow_nan=False, default=float))
    else:
        print(table(out))
    return 0
