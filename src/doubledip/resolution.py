r"""Resolution from the reproducibility of restarts: the PRTF over several reconstructions of one pattern.

Phase retrieval from real data has no ground truth.  Where independent starts
agree on the phase of a Fourier component it is determined by the data; where
they disagree it is not.  The phase retrieval transfer function

.. math:: \mathrm{PRTF}(q) = \frac{\sum_{|k| \in q} |\langle F_j(k)\rangle_j|}{\sum_{|k|\in q} s\sqrt{I(k)}}

(:func:`doubledip.metrics.prtf`; Chapman et al., JOSA A 23, 1179 (2006);
Shapiro et al., PNAS 102, 15343 (2005)) is 1 where the ``K`` aligned
reconstructions agree and about :math:`1/\sqrt K` where their phases are random;
the resolution is taken where it first drops below :math:`1/e`.

This module gives

* :func:`classical_starts` -- a classical method run as one batch of starts that
  returns the best start as usual *and* every start's object;
* :func:`repeated_runs` -- any registered method run ``K`` times with seeds
  ``seed, seed + 1, ...`` (for methods that return one object, such as ``ddip``);
* :func:`prtf_summary` / :func:`attach_prtf` -- the PRTF curve and the resolution,
  stored in a :class:`~doubledip.result.Result` (``history["prtf_q"]``,
  ``history["prtf"]``, ``config["resolution_px"]`` ...);
* :func:`prtf_figure` -- the curve with the :math:`1/e` line and the crossing.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["classical_starts", "repeated_runs", "random_level", "prtf_summary", "attach_prtf", "prtf_figure",
           "THRESHOLD"]

THRESHOLD = float(np.exp(-1))
"""PRTF level that defines the resolution (1/e)."""


def classical_starts(measurement, options, *, seed: int = 0, device="cpu", callback=None,
                     method: str = "recipe"):
    """Run a classical method keeping every start: see
    :func:`doubledip.classical.presets.solve_keeping_starts`, run with subnormals flushed."""
    from doubledip.classical.presets import solve_keeping_starts
    from doubledip.methods import flush_denormals

    with flush_denormals():
        return solve_keeping_starts(measurement, options, seed=seed, device=device, callback=callback, method=method)


def _relay(callback, run: int, runs: int):
    """Progress of run ``run`` of ``runs`` as progress of the whole sequence."""

    def relay(info):
        total = int(info.get("total", 0))
        return callback({**info, "iteration": run * total + int(info.get("iteration", 0)), "total": runs * total})

    return relay


def _selection_key(result) -> float:
    """Lower is better: the held-out (free) loss a run selected itself by, else its final loss."""
    for key in ("start_free_loss", "final_free_loss_starts", "free_loss", "loss"):
        values = np.asarray(result.history.get(key, []), dtype=np.float64)
        values = values[np.isfinite(values)]
        if values.size:
            return float(values.min())
    return math.inf


def repeated_runs(solve: Callable, measurement, options, runs: int, *, seed: int = 0, device="cpu",
                  callback=None, checkpoint=None, resume: bool = False):
    """Run ``solve`` ``runs`` times with seeds ``seed + j``; keep the best run and every object.

    Parameters
    ----------
    solve : callable
        ``solve(measurement, options, *, seed, device, callback[, checkpoint, resume]) -> Result``.
    runs : int
        Number of independent runs (>= 1).
    checkpoint : path, optional
        Checkpoint folder; run ``j`` uses ``checkpoint/run-j`` (passed only when given).

    Returns
    -------
    result : Result
        The run with the lowest free loss (:func:`_selection_key`); ``config["prtf_runs"]``,
        ``config["prtf_chosen_run"]`` and ``history["prtf_run_keys"]`` record the choice.
    objects : ndarray, complex64, shape ``(runs, *grid)``
    """
    from pathlib import Path

    results = []
    for j in range(int(runs)):
        extra = {}
        if checkpoint is not None:
            extra = {"checkpoint": Path(checkpoint) / f"run-{j}", "resume": resume}
        results.append(solve(measurement, options, seed=seed + j, device=device,
                             callback=None if callback is None else _relay(callback, j, runs), **extra))
    keys = np.array([_selection_key(r) for r in results])
    best = int(np.argmin(np.where(np.isfinite(keys), keys, np.inf)))
    result = results[best]
    result.config["prtf_runs"] = int(runs)
    result.config["prtf_chosen_run"] = best
    result.config["prtf_run_seeds"] = [seed + j for j in range(int(runs))]
    result.history["prtf_run_keys"] = keys
    result.timings["total_all_runs"] = float(sum(r.timings.get("total", 0.0) for r in results))
    return result, np.stack([np.asarray(r.object, np.complex64) for r in results])


def random_level(reconstructions: int) -> float:
    r"""Expected PRTF of ``K`` reconstructions whose phases are independent and uniform.

    :math:`E\,|\frac1K\sum_j e^{i\phi_j}| \approx \sqrt{\pi / (4K)}` (the mean of a Rayleigh
    variable of scale :math:`1/\sqrt{2K}`): 0.51 for 3, 0.31 for 8, 0.22 for 16 reconstructions.
    A crossing of the :math:`1/e` level means something only where this lies well below it.
    """
    return float(math.sqrt(math.pi / (4 * int(reconstructions))))


def prtf_summary(objects, measurement, *, threshold: float = THRESHOLD, bins=None) -> dict:
    r"""PRTF of ``objects`` against the measured pattern and the resolution where it drops below ``threshold``.

    By default the shells are one pixel wide and stop at the inscribed circle (sphere)
    :math:`|q| \le \min(N)/2`: the corner shells are incomplete and, on a pattern with
    many zero-count pixels, their ratio means little.

    Returns
    -------
    dict
        ``q`` (shell radii, pixels from the centre), ``prtf`` (values), ``q_cut`` (the
        crossing, linearly interpolated), ``resolution_px`` (half-period ``N / (2 q_cut)`` in
        object pixels, ``N`` the smallest pattern side), ``reconstructions`` (``K``),
        ``random_level`` (:func:`random_level`), ``threshold``, ``q_max`` (the largest shell:
        if ``q_cut == q_max`` the PRTF never
        dropped and the detector edge limits the resolution).
    """
    from doubledip import metrics

    stack = np.asarray(objects)
    intensity = np.asarray(measurement.intensity)
    ndim = intensity.ndim
    if stack.ndim != ndim + 1 or stack.shape[0] < 2:
        raise ValueError(f"need at least 2 reconstructions of shape {intensity.shape}, got {stack.shape}")
    n = int(min(intensity.shape))
    if bins is None:
        bins = np.arange(-0.5, n // 2 + 0.5)
    q, values = metrics.prtf(stack, intensity, measurement.mask, ndim=ndim, bins=bins)
    q_cut, half_period = metrics.resolution_from_prtf(q, values, n, threshold=threshold)
    k = int(stack.shape[0])
    return {"q": q, "prtf": values, "q_cut": q_cut, "resolution_px": half_period,
            "reconstructions": k, "random_level": random_level(k), "threshold": float(threshold),
            "q_max": float(q[-1]) if len(q) else 0.0, "pattern_side": n}


def attach_prtf(result, summary: dict):
    """Store a :func:`prtf_summary` in ``result``: ``history["prtf_q"]``, ``history["prtf"]``,
    ``config["resolution_px"]``, ``config["prtf_q_cut"]``, ``config["prtf_reconstructions"]``,
    ``config["prtf_limited_by_detector"]``.  Returns ``result``."""
    result.history["prtf_q"] = np.asarray(summary["q"], dtype=np.float64)
    result.history["prtf"] = np.asarray(summary["prtf"], dtype=np.float64)
    result.config["resolution_px"] = float(summary["resolution_px"])
    result.config["prtf_q_cut"] = float(summary["q_cut"])
    result.config["prtf_threshold"] = float(summary["threshold"])
    result.config["prtf_reconstructions"] = int(summary["reconstructions"])
    result.config["prtf_random_level"] = float(summary["random_level"])
    result.config["prtf_limited_by_detector"] = bool(summary["q_cut"] >= summary["q_max"])
    return result


def prtf_figure(q, values, *, q_cut: float | None = None, resolution_px: float | None = None,
                reconstructions: int | None = None, random: float | None = None, threshold: float = THRESHOLD,
                title: str = ""):
    """The PRTF against :math:`|q|` with the :math:`1/e` line, the crossing and the random-phase level."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(q, values, "-", color="C0", label="PRTF")
    ax.axhline(threshold, color="C3", ls="--", lw=1, label="1/e")
    if reconstructions:
        level = random if random is not None else random_level(reconstructions)
        ax.axhline(level, color="gray", ls=":", lw=1, label=f"random phases, {reconstructions} reconstructions")
    if q_cut is not None:
        label = f"q = {q_cut:.1f} px" + (f", half-period {resolution_px:.2f} px" if resolution_px else "")
        ax.axvline(q_cut, color="C2", lw=1, label=label)
    ax.set_xlabel("|q| (pixels from the pattern centre)")
    ax.set_ylabel("PRTF")
    ax.set_ylim(0, 1.05)
    ax.set_xlim(0, float(np.max(q)) if len(q) else 1)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    return fig
