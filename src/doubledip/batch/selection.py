r"""The rule that picks the best of several starts, read from finished :class:`~doubledip.result.Result`\ s.

A single run ranks its starts inside the solver; a batch that spreads the starts
of one pattern over workers gets one result per start and must rank them the
same way afterwards.  The solvers record what they ranked by:

* classical methods (:mod:`doubledip.classical`): ``history["final_free_loss_starts"]``
  (``rank_by = "free"``, the default), ``"final_free_poisson_starts"``
  (``"free_poisson"``) or ``"final_loss_starts"`` (``"fourier"``), per start,
  with ``history["rank_starts"] == 0`` marking the start returned; when the
  free error is NaN (no held-out pixels) the Fourier error ``final_loss_starts``;
* ``ddip`` (:mod:`doubledip.dip.solver`): ``history["start_free_loss"]`` (lowest
  free loss of each start's fit) at ``config["chosen_start"]``, under the key
  ``"failed_start_free_loss"`` when ``config["success"]`` is false (free
  chi-square or magnitude penalty over its limit); the last ``history["loss"]``
  when there are no free pixels;
* any other method: the last finite value of ``history["free_loss"]``, else of
  ``history["loss"]``.

:func:`best_start` then takes the lowest free value of a start that did not
fail; failed starts come next, and values that are not free losses (the
fallbacks) count as worse than any free one -- the classical engine's
``Engine.ranking`` rule, with ``ddip``'s successful starts first as in its solver.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["selection_value", "free_loss", "best_start"]

_CLASSICAL_KEYS = {"free": "final_free_loss_starts", "free_poisson": "final_free_poisson_starts",
                   "fourier": "final_loss_starts"}


def _last_finite(curve) -> float:
    curve = np.asarray(curve, dtype=np.float64).ravel()
    finite = curve[np.isfinite(curve)]
    return float(finite[-1]) if finite.size else math.nan


def _classical_best(result) -> int | None:
    rank = result.history.get("rank_starts")
    if rank is None or np.size(rank) == 0:
        return None
    return int(np.argmin(np.asarray(rank)))


def _pick(history, key: str, index: int) -> float:
    values = np.asarray(history.get(key, []), dtype=np.float64).ravel()
    return float(values[index]) if index < values.size else math.nan


def selection_value(result) -> tuple[str, float]:
    """``(key, value)``: what the method ranked the returned start by, and its value.

    ``key`` names the history entry the value came from; it contains ``"free"``
    when the value is a held-out (free) error, and is ``"loss"`` or
    ``"final_loss_starts"`` for the fallbacks.  Lower is better.
    """
    history, config = result.history, result.config
    best = _classical_best(result)
    if best is not None:
        key = _CLASSICAL_KEYS.get(config.get("rank_by", "free"), "final_free_loss_starts")
        value = _pick(history, key, best)
        if math.isnan(value):
            key, value = "final_loss_starts", _pick(history, "final_loss_starts", best)
        return key, value
    if "start_free_loss" in history and "chosen_start" in config:
        value = _pick(history, "start_free_loss", int(config["chosen_start"]))
        if math.isfinite(value):
            return ("start_free_loss" if config.get("success", True) else "failed_start_free_loss"), value
        return "loss", _last_finite(history.get("loss", []))
    value = _last_finite(history.get("free_loss", []))
    if math.isfinite(value):
        return "free_loss", value
    return "loss", _last_finite(history.get("loss", []))


def free_loss(result) -> float:
    """The free (held-out) error of the returned start, NaN when the method has none."""
    history, config = result.history, result.config
    best = _classical_best(result)
    if best is not None:
        return _pick(history, "final_free_loss_starts", best)
    if "start_free_loss" in history and "chosen_start" in config:
        return _pick(history, "start_free_loss", int(config["chosen_start"]))
    return _last_finite(history.get("free_loss", []))


def best_start(values) -> int:
    """Index of the best of several starts given their :func:`selection_value` pairs.

    The lowest free value of a start that did not fail wins, then the lowest free
    value of a failed one (key starting with ``"failed"``), then the lowest
    fallback value; NaN counts as infinitely bad.  Ties go to the lower index.
    """
    values = list(values)
    if not values:
        raise ValueError("no starts to choose from")

    def order(i):
        key, value = values[i]
        if not math.isfinite(value):
            return (3, math.inf)
        if "free" not in key:
            return (2, value)
        return (1 if key.startswith("failed") else 0, value)

    return min(range(len(values)), key=order)
