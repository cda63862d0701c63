"""Where does the l0 kernel estimate fail: in its alternation, or in the data?

For every case of the deblurring suite (same images, kernels, noise seeds and 2x size bound as
``deblur_suite.py``; ``--noise`` may include 0) it reports the kernel error (after alignment,
:mod:`doubledip.deblur.evaluation`) of

* ``l0``     -- :func:`doubledip.deblur.estimate_kernel` with the package's settings;
* ``oracle`` -- one kernel step of that estimator (same ridge, k >= 0 gate and clean-up) given the
  TRUE sharp image as its latent image: what the data allow when the latent is right;
* every ``--variant`` -- ``estimate_kernel`` with those keyword arguments (a JSON object; its
  ``tag`` names the column).

An image whose ``l0`` error stays high at noise 0 while its ``oracle`` error is low fails in the
alternation (a wrong fixed point), not for lack of information.  Results go to
``OUT/kernel_diagnosis.jsonl`` and a per-image table ``OUT/kernel_diagnosis.md``.

    PYTHONPATH=src python3 benchmarks/deblur_kernel_diagnosis.py --images mpl:jacksboro_fault_dem,camera \\
        --noise 0,0.01 --variant '{"tag": "gamma 0.3", "gamma": 0.3}' --out benchmarks/out/kernel_diagnosis
    PYTHONPATH=src python3 benchmarks/deblur_kernel_diagnosis.py --quick     # 1 small case, a smoke test
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from deblur_suite import KERNELS, case_list, collect, kernel_indices, make_case


def oracle_kernel(image, blurry, size: int) -> np.ndarray:
    """The estimator's kernel step with the true ``image`` as latent, on the same stretched, periodic data."""
    from doubledip.deblur import DeblurOptions
    from doubledip.deblur.kernel_estimate import _kernel_step, _contrast_stretch, periodic_extension
    from doubledip.deblur.model import noise_level

    options = DeblurOptions()
    y, x = _contrast_stretch(blurry, image)
    nonneg = 100 if noise_level(y) < options.init_nonneg_below else 0
    return _kernel_step(periodic_extension(x, size), periodic_extension(y, size), size, options.init_gamma,
                        options.init_threshold, nonneg_iterations=nonneg)


def run_case(case: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from doubledip.deblur import DeblurOptions, estimate_kernel
    from doubledip.deblur.evaluation import aligned_scores
    from doubledip.deblur.solver import _l0_variant

    image, kernel, blurry = make_case(case)
    size = int(round(2 * case["ksize"])) | 1
    estimates = {"l0": _l0_variant(blurry, size, "l0", DeblurOptions()), "oracle": oracle_kernel(image, blurry, size)}
    for variant in case["variants"]:
        settings = {k: v for k, v in variant.items() if k != "tag"}
        estimates[variant["tag"]] = estimate_kernel(blurry, size, **settings)
    errors = {name: (aligned_scores(image, blurry, kernel=kernel, kernel_estimate=k)["kernel_error"]
                     if k is not None else float("nan")) for name, k in estimates.items()}
    return dict(case, kernel_errors=errors)


def summary(rows: list[dict]) -> str:
    names = list(rows[0]["kernel_errors"])
    lines = ["| image | noise | cases | " + " | ".join(names) + " |", "|---|---|---|" + "---|" * len(names)]
    for noise in sorted({r["noise"] for r in rows}):
        for image in dict.fromkeys(r["image"] for r in rows):
            rs = [r for r in rows if r["noise"] == noise and r["image"] == image]
            if rs:
                means = [np.nanmean([r["kernel_errors"][n] for r in rs]) for n in names]
                lines.append(f"| {image} | {noise:g} | {len(rs)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    lines += ["", "Mean kernel error after alignment (0: exact); oracle = the kernel step given the true sharp image."]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="mpl:jacksboro_fault_dem,clock,cell,microaneurysms,camera,grass")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--noise", default="0,0.01")
    parser.add_argument("--kernels", default="all", help="comma-separated indices into the suite's 8 kernels")
    parser.add_argument("--variant", action="append", default=[], help="JSON keyword arguments of estimate_kernel "
                        "with a 'tag'; repeatable")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/kernel_diagnosis")
    parser.add_argument("--quick", action="store_true", help="one 96-pixel case (smoke test)")
    args = parser.parse_args(argv)
    images, noises = args.images.split(","), [float(n) for n in args.noise.split(",")]
    variants = [json.loads(v) for v in args.variant]
    if any("tag" not in v for v in variants):
        parser.error("every --variant needs a 'tag'")
    only = kernel_indices(args.kernels)
    if args.quick:
        images, only, noises, args.size = images[:1], [0], noises[:1], 96
    cases = case_list(images, noises, KERNELS, args.size, only=only, variants=variants)
    collect(run_case, cases, args.workers, args.out, "kernel_diagnosis",
            lambda row: f"{row['image']} {row['kind']}{row['ksize']} noise {row['noise']:g}: "
                        + " ".join(f"{n} {e:.3f}" for n, e in row["kernel_errors"].items()), summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
