"""Blind deblurring quality suite: sample images x 8 generated kernels (13-31 px) x noise levels.

For every case the sharp image (a scikit-image sample ``NAME`` or a matplotlib one ``mpl:NAME``,
as :func:`doubledip.deblur.images.read_image` reads them; resized and centre-cropped to
``--size``) is blurred by a seeded motion or Gaussian kernel with symmetric boundary
extension, Gaussian noise is added, and four estimates are scored by PSNR/SSIM after
sub-pixel alignment (:mod:`doubledip.deblur.evaluation`):

* ``blurry``  -- the observation itself;
* ``wiener``  -- non-blind Wiener with the TRUE kernel, balance chosen per case with the truth
  (an oracle-tuned baseline, the strongest version of it);
* ``rl``      -- non-blind Richardson-Lucy with the TRUE kernel, iterations chosen with the truth;
* ``known``   -- :func:`doubledip.deblur.deblur` given the TRUE kernel (its non-blind final step,
  nothing tuned with the truth): the ceiling of ``ours`` for the non-blind step;
* ``ours``    -- :func:`doubledip.deblur.deblur` given only an upper bound on the kernel size,
  ``--over`` times the true size (2 by default), its default options unless ``--options``.

The noise of a case is seeded by the kernel's index and the image's name, so a case is the
same whatever list of images it runs in.

A case "collapses" when ours does not beat the blurry input by 0.5 dB or its kernel is
nearly a delta (max > 0.5).  Runs are spread over ``--workers`` processes (one torch thread
each); results go to ``OUT/deblur_suite.jsonl`` and a summary table ``OUT/deblur_suite.md``.

    PYTHONPATH=src python3 benchmarks/deblur_suite.py --device cuda --workers 8 --out benchmarks/out
    PYTHONPATH=src python3 benchmarks/deblur_suite.py --quick          # 2 cases, CPU, a smoke test
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
import zlib
from pathlib import Path

import numpy as np

KERNELS = [("motion", 13), ("gaussian", 15), ("motion", 17), ("motion", 21), ("gaussian", 23), ("motion", 25),
           ("motion", 29), ("motion", 31)]
WIENER_BALANCE = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
RL_ITERATIONS = (5, 10, 20, 40, 80)


def sample(name: str, size: int) -> np.ndarray:
    from skimage.transform import resize

    from doubledip.deblur.images import read_image

    image = read_image(name if name.startswith("mpl:") else f"skimage:{name}")
    if image.ndim == 3:
        image = image.mean(axis=-1)
    h, w = image.shape
    factor = size / min(h, w)
    shape = (max(size, round(h * factor)), max(size, round(w * factor)))
    image = resize(image, shape, anti_aliasing=True)
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    return np.clip(image[top:top + size, left:left + size], 0, 1).astype(np.float32)


def case_list(images, noises, kernels, size: int, *, only=None, **extra) -> list[dict]:
    """The cases of ``images`` x ``kernels`` x ``noises``: kernel seed = its index, noise seeded by it and the image name.

    ``only`` (indices into ``kernels``, None: all) keeps some kernels with the seeds they have in the full list.
    """
    return [dict(extra, image=name, size=size, kind=kind, ksize=ksize, kseed=i, noise=noise,
                 nseed=1000 * i + zlib.crc32(name.encode()) % 997)
            for noise in noises for i, (kind, ksize) in enumerate(kernels) if only is None or i in only
            for name in images]


def kernel_indices(spec: str) -> list[int] | None:
    """``--kernels`` of the screening scripts: ``all`` (None) or comma-separated indices into ``KERNELS``."""
    return None if spec == "all" else [int(i) for i in spec.split(",")]


def collect(run_case, cases: list[dict], workers: int, out, name: str, describe, summary) -> list[dict]:
    """Run ``run_case`` over ``cases`` in ``workers`` spawned processes.

    Each row is appended to ``OUT/NAME.jsonl`` and printed by ``describe(row)``; the text of
    ``summary(rows)`` is written to ``OUT/NAME.md`` and printed.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    with mp.get_context("spawn").Pool(workers) as pool, open(out / f"{name}.jsonl", "w") as fh:
        for row in pool.imap_unordered(run_case, cases):
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(describe(row), flush=True)
    text = summary(rows)
    (out / f"{name}.md").write_text(text + "\n")
    print(text)
    return rows


def make_case(case: dict):
    """The sharp image, the true kernel and the blurry observation of ``case``."""
    from doubledip.deblur import degrade, make_kernel

    image = sample(case["image"], case["size"])
    kernel = make_kernel(case["kind"], case["ksize"], seed=case["kseed"])
    return image, kernel, degrade(image, kernel, noise=case["noise"], seed=case["nseed"])


def oracle_scores(image, kernel, blurry) -> dict:
    """Scores of the blurry input and of Wiener / Richardson-Lucy with the TRUE kernel, tuned with the truth."""
    from doubledip.deblur.baseline import richardson_lucy, wiener
    from doubledip.deblur.evaluation import aligned_scores

    base = aligned_scores(image, blurry, kernel=kernel)
    crop = base["crop"]
    out = dict(crop=crop, blurry=base["psnr"], blurry_ssim=base["ssim"])
    w = [(aligned_scores(image, wiener(blurry, kernel, balance=b), kernel=kernel, crop=crop), b) for b in WIENER_BALANCE]
    best = max(w, key=lambda t: t[0]["psnr"])
    out.update(wiener=best[0]["psnr"], wiener_ssim=best[0]["ssim"], wiener_balance=best[1])
    r = [(aligned_scores(image, richardson_lucy(blurry, kernel, iterations=n), kernel=kernel, crop=crop), n)
         for n in RL_ITERATIONS]
    best = max(r, key=lambda t: t[0]["psnr"])
    out.update(rl=best[0]["psnr"], rl_ssim=best[0]["ssim"], rl_iterations=best[1])
    return out


def run_case(case: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    from doubledip.deblur import deblur
    from doubledip.deblur.evaluation import aligned_scores

    image, kernel, blurry = make_case(case)
    out = dict(case, **oracle_scores(image, kernel, blurry))
    crop = out.pop("crop")
    options = dict(case["options"])
    known = deblur(blurry, options, seed=case["seed"], device=case["device"], kernel=kernel)
    s = aligned_scores(image, known.image, kernel=kernel, crop=crop)
    out.update(known=s["psnr"], known_ssim=s["ssim"])
    options.setdefault("kernel_size", int(round(case["over"] * case["ksize"])) | 1)
    t0 = time.perf_counter()
    result = deblur(blurry, options, seed=case["seed"], device=case["device"])
    out["seconds"] = time.perf_counter() - t0
    s = aligned_scores(image, result.image, kernel=kernel, kernel_estimate=result.kernel, crop=crop)
    out.update(ours=s["psnr"], ours_ssim=s["ssim"], kernel_error=s["kernel_error"], shift=s["shift"],
               kernel_max=float(result.kernel.max()), iterations_run=result.config["iterations_run"],
               best_iteration=result.config["best_iteration"], kernel_size_given=result.config["kernel_size"])
    out["collapse"] = bool(out["ours"] < out["blurry"] + 0.5 or out["kernel_max"] > 0.5)
    return out


def summary(rows: list[dict]) -> str:
    lines = ["| config | noise | cases | blurry | Wiener* | RL* | best* | known k | ours | ours - best* "
             "| SSIM ours / best* | kernel err | collapses | median s/run |", "|" + "---|" * 14]
    groups = {}
    for r in rows:
        groups.setdefault((r["tag"], r["noise"]), []).append(r)
    for (tag, noise), rs in sorted(groups.items()):
        def m(key):
            return float(np.mean([r[key] for r in rs]))
        best = float(np.mean([max(r["wiener"], r["rl"]) for r in rs]))
        best_ssim = float(np.mean([max(r["wiener_ssim"], r["rl_ssim"]) for r in rs]))
        lines.append(f"| {tag} | {noise:g} | {len(rs)} | {m('blurry'):.2f} | {m('wiener'):.2f} | {m('rl'):.2f} | "
                     f"{best:.2f} | {m('known'):.2f} | {m('ours'):.2f} | {m('ours') - best:+.2f} | {m('ours_ssim'):.3f} / {best_ssim:.3f} "
                     f"| {m('kernel_error'):.3f} | {sum(r['collapse'] for r in rs)} | {np.median([r['seconds'] for r in rs]):.1f} |")
    lines.append("")
    lines.append("PSNR in dB after sub-pixel alignment, border cropped; * = non-blind with the TRUE kernel, "
                 "parameter chosen per case with the truth (oracle); known k = our non-blind step given the "
                 "TRUE kernel; ours gets only a size bound (over x the true size).")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default="camera,coins,moon")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--kernels", type=int, default=8, help="how many of the 8 kernels")
    parser.add_argument("--noise", default="0.01,0.05")
    parser.add_argument("--over", type=float, default=2.0, help="kernel size bound / true size")
    parser.add_argument("--options", action="append", default=None,
                        help="JSON of deblur options (repeat to compare configs; tag with a 'tag' key)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2))
    parser.add_argument("--out", default="benchmarks/out")
    parser.add_argument("--quick", action="store_true", help="2 small cases, 100 iterations (smoke test)")
    parser.add_argument("--deadline", type=float, default=None, help="stop collecting after this many seconds")
    args = parser.parse_args(argv)
    configs = [json.loads(o) for o in (args.options or ["{}"])]
    images = args.images.split(",")
    noises = [float(n) for n in args.noise.split(",")]
    kernels = KERNELS[:args.kernels]
    if args.quick:
        images, noises, kernels, args.size = images[:1], noises[:1], KERNELS[:2], 64
        configs = [{**c, "iterations": 100} for c in configs]
    cases = []
    for config in configs:
        tag = config.pop("tag", "default") if "tag" in config else "default"
        cases += case_list(images, noises, kernels, args.size, tag=tag, over=args.over, options=config,
                           seed=args.seed, device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, t0 = [], time.perf_counter()
    ctx = mp.get_context("spawn")
    with ctx.Pool(args.workers) as pool, open(out / "deblur_suite.jsonl", "w") as fh:
        pending = pool.imap_unordered(run_case, cases)
        for _ in cases:
            try:
                timeout = None if args.deadline is None else max(1.0, args.deadline - (time.perf_counter() - t0))
                row = pending.next(timeout=timeout)
            except mp.TimeoutError:
                print(f"deadline reached after {len(rows)} of {len(cases)} cases", flush=True)
                pool.terminate()
                break
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"{row['tag']} {row['image']} {row['kind']}{row['ksize']} noise {row['noise']}: blurry "
                  f"{row['blurry']:.2f} wiener {row['wiener']:.2f} rl {row['rl']:.2f} known {row['known']:.2f} ours {row['ours']:.2f} "
                  f"kerr {row['kernel_error']:.3f} ({row['seconds']:.0f}s)", flush=True)
    table = summary(rows)
    (out / "deblur_suite.md").write_text(table + "\n")
    print(table)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
