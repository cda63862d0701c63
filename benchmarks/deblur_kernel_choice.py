"""Screening of kernel candidates for the held-out-pixel choice (``kernel_init="select"``).

For every case of the deblurring suite (same images, kernels, noise seeds and 2x size bound
as ``deblur_suite.py``) it computes variants of the l0 kernel estimate, the PSNR of the
non-blind TV deconvolution with each (``deblur(..., kernel=k)`` with the rule weight, as the
blind default deconvolves) and each one's held-out error
(the solver's own choice, ``_choose_kernel``: the crop, weight, folds and seed it uses for
``seed=0``), plus the same for the TRUE kernel.  The summary
reports, per noise level, the mean PSNR of every variant relative to plain ``l0``, how often
the true kernel has the least held-out error, and for subsets of the variants the PSNR of the
held-out choice against the best variant chosen with the truth; per image, the true kernel's
held-out error relative to the least of the variants', and the PSNR of the blurry input, of the
chosen variant and of the true kernel.

Variants: ``l0`` (package default settings), ``c10``/``c20`` (``l0`` cleared again at 10% /
20% of its maximum), ``sharp`` (``l0`` squared and renormalised), ``sparse`` (threshold 0.1),
``small`` (side / sqrt 2), ``coarse`` (lam 8e-3), ``fine`` (lam 2e-3), ``nlm2`` (twice the
non-local-means strength of the pre-denoising, ``denoise_h`` 1.6; the same as ``l0`` where the
noise is too low to be denoised), ``tv`` (a different estimator: total-variation blind
deconvolution by Perrone & Favaro's alternating normalised gradient steps, ``tv_blind_kernel.py``).

    PYTHONPATH=src python3 benchmarks/deblur_kernel_choice.py --noise 0.01 --workers 2 --out benchmarks/out/kernel_choice
    PYTHONPATH=src python3 benchmarks/deblur_kernel_choice.py --variants l0,sparse,small --kernels 0,2,4,6 \\
        --images clock,cell --out benchmarks/out/kernel_choice_smooth     # the default's candidates only
    PYTHONPATH=src python3 benchmarks/deblur_kernel_choice.py --quick      # 1 small case, a smoke test
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np

from deblur_suite import KERNELS, case_list, collect, kernel_indices, make_case

VARIANTS = ("l0", "c10", "c20", "sharp", "sparse", "small", "coarse", "fine", "nlm2", "tv")
DEV_IMAGES = "camera,coins,moon,astronaut,chelsea,rocket,coffee,brick,gravel"


def variants(blurry, size: int, names=VARIANTS) -> dict:
    from doubledip.deblur import DeblurOptions, estimate_kernel
    from doubledip.deblur.kernel_estimate import _clean
    from doubledip.deblur.solver import KERNEL_VARIANTS, _l0_variant

    options = DeblurOptions()
    out = {name: _l0_variant(blurry, size, name, options) for name in KERNEL_VARIANTS if name in names}
    if "c10" in names:
        out["c10"] = _clean(out["l0"].copy(), 0.1)
    if "c20" in names:
        out["c20"] = _clean(out["l0"].copy(), 0.2)
    if "sharp" in names:
        out["sharp"] = _clean(out["l0"] ** 2, options.init_threshold)
    if "fine" in names:
        out["fine"] = estimate_kernel(blurry, size, lam=options.init_lam / 2)
    if "nlm2" in names:
        out["nlm2"] = estimate_kernel(blurry, size, denoise_h=1.6)
    if "tv" in names:
        from tv_blind_kernel import tv_blind_kernel

        out["tv"] = tv_blind_kernel(blurry, size)
    return {k: v for k, v in out.items() if v is not None}


def run_case(case: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from doubledip.deblur import DeblurOptions, deblur
    from doubledip.deblur.evaluation import aligned_scores
    from doubledip.deblur.kernels import embed_kernel
    from doubledip.deblur.solver import _choose_kernel

    image, kernel, blurry = make_case(case)
    size = int(round(2 * case["ksize"])) | 1
    candidates = {**variants(blurry, size, case["variants"]), "true": embed_kernel(kernel, size)}
    base = aligned_scores(image, blurry, kernel=kernel)
    options = DeblurOptions(known_weight_factors=(1.0,))
    _, errors = _choose_kernel(blurry, size, list(candidates.values()), options, 0, "cpu")
    out = dict(case, blurry_psnr=base["psnr"], results={})
    for (name, k), error in zip(candidates.items(), errors):
        psnr = aligned_scores(image, deblur(blurry, options, kernel=k).image, kernel=kernel, crop=base["crop"])["psnr"]
        out["results"][name] = dict(psnr=psnr, holdout=error)
    return out


def true_kernel_lines(rows: list[dict]) -> list[str]:
    """Per image: the true kernel's held-out error over the least variant's, and the PSNRs of the blurry input,
    the chosen variant and the true kernel."""
    lines = ["", "| image | noise | cases | true kernel's held-out error / least variant's | true kernel has the least "
             "| PSNR: blurry | chosen variant | true kernel |", "|---|---|---:|---|---:|---:|---:|---:|"]
    for noise in sorted({r["noise"] for r in rows}):
        for image in dict.fromkeys(r["image"] for r in rows):
            rs = [r for r in rows if r["noise"] == noise and r["image"] == image]
            if not rs:
                continue
            ratios, chosen = [], []
            for r in rs:
                res = {n: v for n, v in r["results"].items() if n != "true"}
                best = min(res, key=lambda n: res[n]["holdout"])
                ratios.append(r["results"]["true"]["holdout"] / res[best]["holdout"])
                chosen.append(res[best]["psnr"])
            lines.append(f"| {image} | {noise:g} | {len(rs)} | {' '.join(f'{q:.3f}' for q in ratios)} | "
                         f"{sum(q < 1 for q in ratios)} | {np.mean([r['blurry_psnr'] for r in rs]):.2f} | "
                         f"{np.mean(chosen):.2f} | {np.mean([r['results']['true']['psnr'] for r in rs]):.2f} |")
    return lines


def summary(rows: list[dict]) -> str:
    lines = []
    for noise in sorted({r["noise"] for r in rows}):
        rs = [r for r in rows if r["noise"] == noise]
        base = np.mean([r["results"]["l0"]["psnr"] for r in rs])
        lines.append(f"noise {noise:g}, {len(rs)} cases: l0 {base:.2f} dB, true kernel "
                     f"{np.mean([r['results']['true']['psnr'] for r in rs]):.2f} dB")
        tried = [v for v in VARIANTS if v in rs[0]["variants"]]
        for v in tried:
            psnr = [r["results"].get(v, r["results"]["l0"])["psnr"] for r in rs]
            lines.append(f"  {v:7s} alone      {np.mean(psnr) - base:+.2f} dB")
        ranks = [sum(r["results"][v]["holdout"] < r["results"]["true"]["holdout"] for v in tried
                     if v in r["results"]) for r in rs]
        lines.append(f"  true kernel has the least held-out error in {ranks.count(0)} of {len(rs)} cases")
        for m in range(2, len(tried) + 1):
            for subset in itertools.combinations(tried, m):
                if subset[0] != "l0":
                    continue
                chosen, oracle = [], []
                for r in rs:
                    names = [v for v in subset if v in r["results"]]
                    best = min(names, key=lambda v: r["results"][v]["holdout"])
                    chosen.append(r["results"][best]["psnr"])
                    oracle.append(max(r["results"][v]["psnr"] for v in names))
                lines.append(f"  choice among {','.join(subset):40s} {np.mean(chosen) - base:+.2f} dB "
                             f"(best with the truth {np.mean(oracle) - base:+.2f})")
    return "\n".join(lines + true_kernel_lines(rows))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=DEV_IMAGES)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--noise", default="0.01")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/kernel_choice")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {', '.join(VARIANTS)}"
                        " (l0 always included)")
    parser.add_argument("--kernels", default="all", help="comma-separated indices into the suite's 8 kernels")
    parser.add_argument("--quick", action="store_true", help="one 96-pixel case (smoke test)")
    args = parser.parse_args(argv)
    images, noises = args.images.split(","), [float(n) for n in args.noise.split(",")]
    names = ["l0"] + [v for v in args.variants.split(",") if v != "l0"]
    if any(v not in VARIANTS for v in names):
        parser.error(f"--variants takes {', '.join(VARIANTS)}")
    only = kernel_indices(args.kernels)
    if args.quick:
        images, only, noises, args.size = images[:1], [0], noises[:1], 96
    cases = case_list(images, noises, KERNELS, args.size, only=only, variants=names)
    collect(run_case, cases, args.workers, args.out, "kernel_choice",
            lambda row: f"{row['image']} {row['kind']} {row['ksize']} {row['noise']} "
                        f"{ {v: round(r['psnr'], 2) for v, r in row['results'].items()} }", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
