"""The result every solver returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Result"]


@dataclass
class Result:
    """A reconstruction and how it was made.

    Attributes
    ----------
    object : ndarray, complex64
        The object on the pattern grid (centred real space, origin at ``N // 2``).
    support : ndarray, bool
        Support estimate, same shape as ``object``.
    history : dict of str -> ndarray
        Per-iteration curves.  ``"loss"`` is the main one (the objective the
        method minimised); others (``"free_loss"``, per-start curves of shape
        ``(starts, iterations)``) are method specific.
    config : dict
        Method name and every option used, JSON-serialisable.
    seed : int
        The seed all random choices came from.
    timings : dict of str -> float
        Wall-clock seconds per phase of the run (``"total"`` at least).
    """

    object: np.ndarray
    support: np.ndarray
    history: dict[str, np.ndarray] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.object = np.asarray(self.object, dtype=np.complex64)
        self.support = np.asarray(self.support, dtype=bool)
        if self.support.shape != self.object.shape:
            raise ValueError(f"support shape {self.support.shape} != object shape {self.object.shape}")
        self.history = {k: np.asarray(v, dtype=np.float64) for k, v in self.history.items()}
