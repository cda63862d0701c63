"""Non-blind deblurring with the TRUE kernel: the TV weight rule against the held-out choice of the weight.

For every case of the deblurring suite (same images, kernels and noise seeds as
``deblur_suite.py``) it runs ``deblur(blurry, kernel=k)`` twice: with the weight rule alone
(``known_weight_factors = [1]``) and with the default held-out choice among
``known_weight_factors`` (:func:`doubledip.deblur.kernel_selection.select_weight`), and
scores both, the blurry input and the oracle-tuned Wiener / Richardson-Lucy (``best*``) by
PSNR after alignment.  Results go to ``OUT/known_weight.jsonl`` and a summary table
``OUT/known_weight.md`` (mean PSNR per noise level, the chosen factors, seconds per run).

    PYTHONPATH=src python3 benchmarks/deblur_known_weight.py --workers 2 --out benchmarks/out/known_weight
    PYTHONPATH=src python3 benchmarks/deblur_known_weight.py --quick      # 2 small cases, a smoke test
"""

from __future__ import annotations

import argparse
import collections
import time

import numpy as np

from deblur_suite import KERNELS, case_list, collect, make_case, oracle_scores

DEV_IMAGES = "camera,coins,moon,astronaut,chelsea,rocket,coffee,brick,gravel"


def run_case(case: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from doubledip.deblur import deblur
    from doubledip.deblur.evaluation import aligned_scores

    image, kernel, blurry = make_case(case)
    out = dict(case, **oracle_scores(image, kernel, blurry))
    crop = out.pop("crop")
    for name, options in (("rule", {"known_weight_factors": [1]}), ("chosen", {})):
        t0 = time.perf_counter()
        result = deblur(blurry, options, kernel=kernel)
        out[f"{name}_seconds"] = time.perf_counter() - t0
        out[name] = aligned_scores(image, result.image, kernel=kernel, crop=crop)["psnr"]
        if name == "chosen":
            out["factor"] = result.config["weight_choice"]["factor"]
    return out


def summary(rows: list[dict]) -> str:
    lines = ["| images | noise | cases | blurry | best* | rule weight | held-out weight | gain | factors chosen "
             "| s/run rule / held-out |", "|" + "---|" * 10]
    groups = collections.defaultdict(list)
    for r in rows:
        groups[(r["group"], r["noise"])].append(r)
    for (group, noise), rs in sorted(groups.items()):
        def m(key):
            return float(np.mean([r[key] for r in rs]))
        best = float(np.mean([max(r["wiener"], r["rl"]) for r in rs]))
        factors = collections.Counter(r["factor"] for r in rs)
        counts = ", ".join(f"{f:g}: {n}" for f, n in sorted(factors.items()))
        lines.append(f"| {group} | {noise:g} | {len(rs)} | {m('blurry'):.2f} | {best:.2f} | {m('rule'):.2f} | "
                     f"{m('chosen'):.2f} | {m('chosen') - m('rule'):+.2f} | {counts} | "
                     f"{np.median([r['rule_seconds'] for r in rs]):.1f} / {np.median([r['chosen_seconds'] for r in rs]):.1f} |")
    lines.append("")
    lines.append("PSNR in dB after sub-pixel alignment, border cropped; best* = Wiener / Richardson-Lucy with the "
                 "TRUE kernel, parameter chosen per case with the truth; rule weight = 0.6 sigma^1.5; held-out "
                 "weight = the rule times the factor of least held-out error; s/run = median seconds per deblur.")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", action="append", default=None,
                        help="comma-separated images, one group per use (default: the nine development images)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--noise", default="0.01,0.05")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/out/known_weight")
    parser.add_argument("--quick", action="store_true", help="2 cases of 64 pixels (smoke test)")
    args = parser.parse_args(argv)
    groups = args.images or [DEV_IMAGES]
    noises, kernels = [float(n) for n in args.noise.split(",")], KERNELS
    if args.quick:
        groups, noises, kernels, args.size = ["camera"], noises[:1], KERNELS[:2], 64
    cases = [c for g in groups for c in case_list(g.split(","), noises, kernels, args.size, group=g)]
    collect(run_case, cases, args.workers, args.out, "known_weight",
            lambda row: f"{row['image']} {row['kind']}{row['ksize']} noise {row['noise']}: rule "
                        f"{row['rule']:.2f} held-out {row['chosen']:.2f} (x{row['factor']:g})", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
