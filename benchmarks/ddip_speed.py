"""Wall-clock time of ``ddip`` with its default options on this machine (CPU, default torch threads).

Runs the whole method (warm start, pretraining, fit, every restart) on simulated noisy
crystals -- 2D box 64 in a 128^2 pattern, 3D box 32 in 64^3 -- ``--repeats`` times each
and reports the median, the split between the phases of the run, and a torch profile of a
few fitting steps (where the time goes).  Writes ``OUT.json`` and ``OUT.md``.

    PYTHONPATH=src python benchmarks/ddip_speed.py --repeats 3 --repeats3d 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "1000")  # as the command line does, before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402

from doubledip.config import make_options
from doubledip.dip.parameterizations import ComplexDIP
from doubledip.dip.solver import DDIPOptions, FarFieldObjective, solve
from doubledip.methods import flush_denormals
from doubledip.metrics import sa_error
from doubledip.physics import FarField
from doubledip.simulate import simulate


def profile_steps(options: DDIPOptions, box, pattern, steps=5):
    """Top operators of a few fitting steps (forward, backward, Adam) of the default model."""
    model = ComplexDIP(box, parameterization=options.parameterization, phase_head=options.phase_head,
                       kind=options.generator, width=options.width or (16 if len(box) == 2 else 8), depth=options.depth,
                       max_width=options.max_width, upsample=options.upsample, norm=options.norm)
    far = FarField(pattern, box)
    ones = torch.ones(pattern)
    objective = FarFieldObjective(far, torch.rand(pattern), ones, ones * 0, binary_weight=options.binary_weight)
    opt = torch.optim.Adam(model.parameters(), options.lr)

    def step():
        opt.zero_grad()
        loss, _ = objective(model())
        loss.backward()
        opt.step()

    with flush_denormals():  # as in the solver: subnormal arithmetic would dominate the profile
        step()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        per_step = (time.perf_counter() - t0) / steps
        with torch.profiler.profile() as prof:
            for _ in range(steps):
                step()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12)
    return per_step, table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--repeats3d", type=int, default=1)
    p.add_argument("--config", default="{}", help="JSON options for ddip")
    p.add_argument("--out", default="benchmarks/out/ddip_speed")
    args = p.parse_args(argv)
    options = make_options(DDIPOptions, json.loads(args.config))
    rows, md = [], []
    load_start = os.getloadavg()
    cases = [("2d", "crystal2d", 64, args.repeats, 1e6, 3.0), ("3d", "crystal3d", 32, args.repeats3d, 1e7, 2.0)]
    for name, kind, size, repeats, photons, beamstop in cases:
        for i in range(repeats):
            m = simulate(kind, size, seed=2000 + i, photons=photons, beamstop=beamstop)
            t0 = time.perf_counter()
            r = solve(m, options, seed=i)
            wall = time.perf_counter() - t0
            rows.append(dict(case=name, seed=i, wall=wall, timings=r.timings, starts=r.config["starts"],
                             error=sa_error(m.object, r.object, subpixel=True), penalty=r.config.get("penalty"),
                             free_chi2=r.config.get("free_chi2")))
            print(name, i, f"{wall:.1f}s", r.timings, f"err {rows[-1]['error']:.3f} starts {r.config['starts']} "
                  f"chi2 {r.config.get('free_chi2'):.3f} penalty {r.config.get('penalty'):.4f}", flush=True)
    summary = {}
    for name in ("2d", "3d"):
        walls = [r["wall"] for r in rows if r["case"] == name]
        if walls:
            phases = {k: float(np.median([r["timings"][k] for r in rows if r["case"] == name]))
                      for k in rows[0]["timings"]}
            summary[name] = dict(median=float(np.median(walls)), runs=walls, phases=phases)
    profiles = {}
    for name, box, pattern in (("2d", (64, 64), (128, 128)), ("3d", (32, 32, 32), (64, 64, 64))):
        per_step, table = profile_steps(options, box, pattern)
        profiles[name] = dict(per_step=per_step, table=table)
    meta = dict(command=" ".join([os.path.basename(sys.executable)] + sys.argv), threads=torch.get_num_threads(),
                cpu_count=os.cpu_count(), load_start=load_start, load=os.getloadavg())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, summary=summary, rows=rows,
                                                        profiles={k: v["per_step"] for k, v in profiles.items()}),
                                                   indent=1))
    md.append(f"Command: `{meta['command']}` (torch threads {meta['threads']}, load average "
              f"(1, 5, 15 min) at start {tuple(round(v, 2) for v in load_start)}, at end "
              f"{tuple(round(v, 2) for v in meta['load'])})\n")
    for name, s in summary.items():
        errors = [f"{r['error']:.3f}" for r in rows if r["case"] == name]
        md.append(f"- {name}: median {s['median']:.1f} s over {len(s['runs'])} runs; phases (median s): "
                  + ", ".join(f"{k} {v:.1f}" for k, v in s["phases"].items()) + f"; errors {', '.join(errors)}")
    for name, prof in profiles.items():
        md.append(f"\n{name}: {prof['per_step'] * 1000:.1f} ms per fitting step\n\n```\n{prof['table']}\n```")
    out.with_suffix(".md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
