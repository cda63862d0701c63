"""Speed of the classical engine's HIO iteration (not part of the test suite).

For each grid (256^2, 512^2, 128^3) and batch (1 and 8 starts) it times, in
the same process:

* ``engine``: one HIO step of :class:`doubledip.classical.Engine` with its
  default options (modulus projection with masked and held-out pixels, Fourier
  error of every start, support update; on the CPU the fused Numba loops of
  :mod:`doubledip.classical.fused`), median over ``--iterations`` rounds;
* ``torch``: on the CPU, the same step with ``fused=False`` (the torch
  operations, the arithmetic of the CUDA path);
* ``numpy``: the same iteration written plainly in NumPy (complex64,
  ``np.fft`` with ``norm="ortho"``, ``np.where``), median as well;
* ``fft bound``: one forward plus one inverse torch FFT of the same batch, the
  least any implementation of the iteration must spend; both forms are timed,
  returning new arrays and in place with ``out=``, and the faster one is the
  bound (which one wins depends on the size and on the allocator).

It reports iterations per second (of the batch, and per start), the ratio to
NumPy, the fraction of the FFT bound reached (bound time / engine time), and
the engine's memory per start in pattern-sized complex64 arrays.

    python benchmarks/classical_speed.py                   # torch's default threads
    python benchmarks/classical_speed.py --threads 1 --iterations 10
    python benchmarks/classical_speed.py --device cuda

Writes ``benchmarks/out/classical_speed.json`` and ``.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from doubledip import fft
from doubledip.classical import ClassicalOptions, Engine, fused

CASES = [((256, 256), 1), ((256, 256), 8), ((512, 512), 1), ((512, 512), 8), ((128, 128, 128), 1),
         ((128, 128, 128), 8)]


def synthetic(shape, seed=0):
    """A random complex object in the central half box, its pattern and a small beamstop mask."""
    rng = np.random.default_rng(seed)
    obj = np.zeros(shape, np.complex64)
    box = tuple(slice(n // 4, n // 4 + n // 2) for n in shape)
    obj[box] = np.exp(1j * rng.uniform(0, 1, obj[box].shape))
    intensity = (np.abs(fft.cfft(obj, len(shape))) ** 2).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[tuple(slice(n // 2 - 2, n // 2 + 3) for n in shape)] = 1
    return intensity, mask


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def engine_runner(intensity, mask, starts, device, **options):
    """One HIO step of the engine, and its peak memory per start in pattern-sized complex64 arrays."""
    engine = Engine(intensity, mask, options=ClassicalOptions(starts=starts, **options), seed=0, device=device)
    engine.run("2*HIO + SW")  # the guard's support copy exists from the first shrink-wrap on
    engine.step("HIO")
    held = [engine.x, engine.support, *engine._buffers.values()]
    if engine.guard.best_support is not None:
        held.append(engine.guard.best_support)
    grid = engine.x[0].numel() * 8
    # plus the Fourier transform, a temporary of every iteration (reused in place for the inverse)
    memory = sum(t.numel() * t.element_size() for t in held) / (starts * grid) + 1

    def step():
        engine.step("HIO")
        _sync(device)

    return step, memory


def numpy_runner(intensity, mask, starts, beta=0.9):
    """The same HIO iteration written plainly in NumPy (complex64)."""
    ndim = intensity.ndim
    axes = tuple(range(-ndim, 0))
    amp = fft.uncentre(np.sqrt(intensity), ndim).astype(np.float32)
    measured = fft.uncentre(mask == 0, ndim)
    norm = float(np.sum(amp**2 * measured))
    support = np.broadcast_to(np.abs(np.fft.ifftn(fft.uncentre(intensity, ndim))) > 1e-3 * intensity.sum() ** 0.5,
                              (starts,) + intensity.shape)
    rng = np.random.default_rng(0)
    state = {"x": (rng.standard_normal((starts,) + intensity.shape) * 1j).astype(np.complex64)}

    def step():
        x = state["x"]
        X = np.fft.fftn(x, axes=axes, norm="ortho")
        magnitude = np.abs(X)
        np.sum(((magnitude - amp) * measured) ** 2, axis=axes) / norm
        X *= np.where(measured, amp / np.maximum(magnitude, 1e-30), 1.0).astype(np.float32)
        y = np.fft.ifftn(X, axes=axes, norm="ortho").astype(np.complex64, copy=False)
        state["x"] = np.where(support, y, x - beta * y)

    return step


def fft_runner(shape, starts, device, *, in_place=False):
    """One forward and one inverse torch FFT of the batch (returning new arrays, or in place with ``out=``)."""
    dims = tuple(range(-len(shape), 0))
    state = {"x": torch.randn((starts,) + tuple(shape), dtype=torch.complex64, device=device)}

    def step():
        if in_place:
            torch.fft.fftn(state["x"], dim=dims, norm="ortho", out=state["x"])
            torch.fft.ifftn(state["x"], dim=dims, norm="ortho", out=state["x"])
        else:
            X = torch.fft.fftn(state["x"], dim=dims, norm="ortho")
            state["x"] = torch.fft.ifftn(X, dim=dims, norm="ortho")
        _sync(device)

    return step


def time_round_robin(runners: dict, rounds: int) -> dict:
    """Time the runners in turn, ``rounds`` times, so that a shared machine's load hits them alike.

    Each turn times a block of consecutive calls (enough for about 20 ms) and keeps the
    mean: a runner is timed in its steady state, not just after another one has let
    the thread pools fall asleep.
    """
    blocks = {}
    for name, run in runners.items():  # warm up, and size the blocks
        run()
        t0 = time.perf_counter()
        run()
        blocks[name] = max(1, min(20, int(0.02 / max(time.perf_counter() - t0, 1e-6))))
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            t0 = time.perf_counter()
            for _ in range(blocks[name]):
                run()
            times[name].append((time.perf_counter() - t0) / blocks[name])
    return {name: (float(np.median(v)), float(np.min(v))) for name, v in times.items()}


def torch_cell(r) -> str:
    if not r.get("torch_s"):
        return "-"
    vs = f"{r['torch_vs_numpy']:.2f}x, " if r.get("torch_vs_numpy") else ""
    return f"{r['torch_s'] * 1e3:.2f} ({vs}{r['torch_fraction_of_fft_bound']:.2f})"


def markdown(report) -> str:
    lines = [f"# Classical engine speed (HIO), {report['device']}, torch {report['torch']}, "
             f"{report['threads']} thread(s)", "",
             "medians; `it/s` = iterations of the whole batch per second; `start-it/s` = it/s x starts; "
             "`vs numpy` = engine speed / NumPy speed (same iteration, same run); `of FFT bound` = "
             "(one forward + one inverse FFT) / engine iteration; `torch` = the engine with `fused=False` "
             "(torch operations instead of the fused loops), its ratios to NumPy and to the bound in brackets; memory = "
             "pattern-sized complex64 arrays per start held by the engine", "",
             "| grid | starts | engine ms | it/s | start-it/s | numpy ms | vs numpy | FFT pair ms "
             "| of FFT bound | vs numpy (min) | of FFT bound (min) | memory / start | torch ms (vs numpy, of bound) |",
             "|" + "---|" * 13]
    for r in report["cases"]:
        grid = "x".join(map(str, r["shape"]))
        numpy_ms = f"{r['numpy_s'] * 1e3:.1f}" if r["numpy_s"] else "-"
        ratio = f"{r['vs_numpy']:.2f}x" if r["vs_numpy"] else "-"
        lines.append(f"| {grid} | {r['starts']} | {r['engine_s'] * 1e3:.2f} | {r['iterations_per_s']:.1f} | "
                     f"{r['start_iterations_per_s']:.1f} | {numpy_ms} | {ratio} | {r['fft_pair_s'] * 1e3:.2f} | "
                     f"{r['fraction_of_fft_bound']:.2f} | "
                     f"{'-' if r['vs_numpy_min'] is None else format(r['vs_numpy_min'], '.2f') + 'x'} | "
                     f"{r['fraction_of_fft_bound_min']:.2f} | {r['memory_arrays_per_start']:.2f} | {torch_cell(r)} |")
    load, end = report.get("load_average"), report.get("load_average_end")
    if load:
        lines += ["", f"load average (1, 5, 15 min) at start {load[0]:.2f}, {load[1]:.2f}, {load[2]:.2f}, at end "
                  f"{end[0]:.2f}, {end[1]:.2f}, {end[2]:.2f} on this 2-core machine shared with other jobs; engine, "
                  "NumPy and FFT are timed in turn (round robin, each turn a block of consecutive calls of about "
                  "20 ms) so that the load hits them alike; `(min)` columns use the fastest round of each"]
    return "\n".join(lines) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=21, help="timed rounds per case (median and min reported)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-numpy", action="store_true", help="skip the NumPy reference")
    p.add_argument("--cases", default=None, help="e.g. '512x512:1,128x128x128:8'")
    p.add_argument("--out", default="benchmarks/out/classical_speed")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = CASES
    if args.cases:
        cases = [(tuple(int(v) for v in grid.split("x")), int(k)) for grid, k in
                 (item.split(":") for item in args.cases.split(","))]
    load = list(__import__("os").getloadavg()) if hasattr(__import__("os"), "getloadavg") else None
    results = []
    for shape, starts in cases:
        intensity, mask = synthetic(shape)
        engine_step, memory = engine_runner(intensity, mask, starts, device)
        runners = {"engine": engine_step, "fft": fft_runner(shape, starts, device),
                   "fft_in_place": fft_runner(shape, starts, device, in_place=True)}
        if fused.AVAILABLE and device.type == "cpu":  # the default engine ran the fused loops
            runners["torch"], torch_memory = engine_runner(intensity, mask, starts, device, fused=False)
        if not args.no_numpy:
            runners["numpy"] = numpy_runner(intensity, mask, starts)
        t = time_round_robin(runners, args.iterations)
        t["fft_bound"] = tuple(min(a, b) for a, b in zip(t["fft"], t["fft_in_place"]))  # the faster form
        engine_s, fft_s = t["engine"][0], t["fft_bound"][0]
        numpy_s = t["numpy"][0] if "numpy" in t else None
        torch_s = t["torch"][0] if "torch" in t else None
        r = {"shape": list(shape), "starts": starts, "engine_s": engine_s, "torch_s": torch_s,
             "torch_fraction_of_fft_bound": fft_s / torch_s if torch_s else None,
             "torch_vs_numpy": numpy_s / torch_s if torch_s and numpy_s else None,
             "torch_memory_arrays_per_start": torch_memory if torch_s else None,
             "fft_pair_s": fft_s, "numpy_s": numpy_s,
             "iterations_per_s": 1 / engine_s, "start_iterations_per_s": starts / engine_s,
             "vs_numpy": numpy_s / engine_s if numpy_s else None, "fraction_of_fft_bound": fft_s / engine_s,
             "memory_arrays_per_start": memory,
             "min_s": {name: v[1] for name, v in t.items()},
             "vs_numpy_min": t["numpy"][1] / t["engine"][1] if "numpy" in t else None,
             "fraction_of_fft_bound_min": t["fft_bound"][1] / t["engine"][1]}
        results.append(r)
        vs = "" if numpy_s is None else f"{numpy_s / engine_s:.2f}x numpy (min {r['vs_numpy_min']:.2f}), "
        print(f"{'x'.join(map(str, shape))} x{starts}: engine {engine_s * 1e3:.2f} ms ({starts / engine_s:.1f} "
              f"start-it/s), torch {'-' if torch_s is None else f'{torch_s * 1e3:.2f} ms'}, numpy {'-' if numpy_s is None else f'{numpy_s * 1e3:.2f} ms'}, FFT pair "
              f"{fft_s * 1e3:.2f} ms -> {fft_s / engine_s:.2f} of bound (min {r['fraction_of_fft_bound_min']:.2f}), "
              f"{vs}{memory:.2f} arrays/start", flush=True)
    report = {"cases": results, "device": str(device), "threads": torch.get_num_threads(), "torch": torch.__version__,
              "numpy": np.__version__, "machine": platform.processor() or platform.machine(),
              "load_average": load, "load_average_end": list(__import__("os").getloadavg()), "rounds": args.iterations}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown(report))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
