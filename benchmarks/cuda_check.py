"""Check the CUDA path of the solvers and time it against the CPU in the same run.

    python benchmarks/cuda_check.py --out benchmarks/out/cuda_check.json

Runs `hio-er-sw` and `ddip` on one simulated noisy 2D crystal (64 in 128) and one noiseless
3D crystal (32 in 64) on cuda, `hio-er-sw` also on cpu, and the HIO iteration speed on both
devices; writes errors and timings (medians) to a JSON file.
"""

import argparse
import json
import statistics
import time

import torch

from doubledip import metrics
from doubledip.classical.engine import Engine
from doubledip.classical.options import ClassicalOptions
from doubledip.config import make_options
from doubledip.methods import get_method
from doubledip.simulate import simulate


def run(method, sample, device, seed=0):
    m = get_method(method)
    opts = make_options(m.options_cls, {})
    t = time.perf_counter()
    result = m.solve(sample, opts, seed=seed, device=device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return {"error": metrics.sa_error(sample.object, result.object), "time_s": time.perf_counter() - t}


def hio_speed(shape, starts, device, repeats=5, iters=50):
    import numpy as np

    intensity = np.random.default_rng(0).random(shape).astype(np.float32)
    engine = Engine(intensity, options=ClassicalOptions(starts=starts), seed=0, device=device)
    times = []
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(iters):
            engine.step("HIO")
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t) / iters)
    return {"ms_per_iteration": 1e3 * statistics.median(times), "start_iterations_per_s": starts / statistics.median(times)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    args = p.parse_args()
    report = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        report["gpu"] = torch.cuda.get_device_name(0)
    s2 = simulate("crystal2d", 64, seed=1000, photons=1e6, beamstop=3)
    s3 = simulate("crystal3d", 32, seed=1000)
    report["hio-er-sw 2D cpu"] = run("hio-er-sw", s2, "cpu")
    for dev in ["cuda"] if torch.cuda.is_available() else []:
        report[f"hio-er-sw 2D {dev}"] = run("hio-er-sw", s2, dev)
        report[f"ddip 2D {dev}"] = run("ddip", s2, dev)
        report[f"ddip 3D {dev}"] = run("ddip", s3, dev)
    for shape in [(256, 256), (512, 512), (128, 128, 128)]:
        for starts in (1, 8):
            for dev in ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"]:
                key = f"HIO {'x'.join(map(str, shape))} starts {starts} {dev}"
                report[key] = hio_speed(shape, starts, dev, repeats=3 if dev == "cpu" else 5, iters=10 if dev == "cpu" else 50)
    with open(args.out, "w") as fh:
        json.dump(report, fh, indent=1)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
