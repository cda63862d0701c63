"""Options of the classical phasing methods (one frozen dataclass; presets change its defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from doubledip.classical.recipe import parse

__all__ = ["ClassicalOptions", "DEFAULT_RECIPE", "SUPPORTS", "RANKINGS"]

DEFAULT_RECIPE = "100*HIO + 45*(20*HIO + SW) + 300*RAAR + 200*ER"
"""The ``hio-er-sw`` recipe (see :mod:`doubledip.classical.presets`)."""

SUPPORTS = ("autocorrelation", "box")
RANKINGS = ("free", "free_poisson", "fourier")


@dataclass(frozen=True)
class ClassicalOptions:
    """Options of the classical projection algorithms.

    Attributes
    ----------
    recipe : str
        The chain of operations, e.g. ``"20*ER + 3*(180*HIO + SW) + 200*ER"``
        (see :mod:`doubledip.classical.recipe`); stored in canonical form.
    starts : int
        Random starts, run together as one batch; the best by ``rank_by`` is returned.
    beta : float
        Feedback / relaxation parameter of HIO, RAAR, DM and OSS, in (0, 1].
    positivity : bool
        Object constraint ``Re x >= 0`` inside the support.
    real : bool
        Object constraint ``Im x = 0``.
    support : str
        Initial support: ``"autocorrelation"`` (thresholded autocorrelation of
        the pattern) or ``"box"`` (centred box).
    support_threshold : float
        Autocorrelation threshold, relative to its maximum, in (0, 1).
    support_sigma : float
        Gaussian smoothing of the autocorrelation before thresholding, pixels.
    box_fraction : float
        Side of the centred box support as a fraction of the grid, in (0, 1].
    sw_threshold : float
        Shrink-wrap threshold relative to each start's maximum, in (0, 1).
    sw_sigma_start, sw_sigma_end : float
        Shrink-wrap Gaussian width (pixels) at the first and the last planned update.
    guard_max_fraction : float
        The guard refuses a shrink-wrap support covering more than this fraction
        of the grid (exploding support).
    guard_loss_ratio, guard_loss_tol : float
        The guard declares a support collapsing when the Fourier error of the
        estimate exceeds ``guard_loss_ratio`` times the best one at an earlier
        update plus ``guard_loss_tol``; it then restores the best support and
        multiplies that start's ``sw_threshold`` by ``sw_backoff``
        (``guard_loss_ratio = inf`` turns this off).
    sw_backoff : float
        Factor in (0, 1] applied to a start's shrink-wrap threshold at each collapse.
    free_fraction : float
        Fraction of the measured pixels held out of the projections (as small
        islands) to rank the starts; 0 disables, and starts are then ranked by
        the Fourier error.
    free_island : int
        Half-width of the held-out islands in pixels (1 gives 3x3 islands).
    oss_stages : int
        Number of filter stages of OSS over its planned iterations.
    rank_by : str
        ``"free"`` (amplitude error on held-out pixels), ``"free_poisson"``
        (Poisson deviance on held-out pixels) or ``"fourier"`` (error on the
        pixels used in the projections).
    average : int
        Number of best-ranked starts averaged into the returned object, each aligned
        onto the best (global phase, sub-pixel translation, twin); a start whose
        ranking error exceeds ``average_error_ratio`` times the best's, or farther
        than ``average_tolerance`` from the best, is left out
        (:func:`doubledip.postprocess.average_aligned`).  1 returns the best start.
    average_error_ratio : float
        See ``average``: on noisy data the best starts fit about equally well and
        averaging cancels noise; on clean data only equally good starts are averaged.
    average_tolerance : float
        Largest relative distance to the best start of an averaged start.
    fused : bool
        On the CPU, run the modulus projection and the ER/HIO/RAAR updates as
        one-pass compiled loops (:mod:`doubledip.classical.fused`, Numba); the same
        arithmetic up to rounding, 20-40% less time per HIO iteration in the speed
        benchmark (``benchmarks/classical_speed.py``).  False:
        the torch operations, as on CUDA (where this is ignored).
    """

    recipe: str = DEFAULT_RECIPE
    starts: int = 8
    beta: float = 0.8
    positivity: bool = False
    real: bool = False
    support: str = "autocorrelation"
    support_threshold: float = 0.1
    support_sigma: float = 1.0
    box_fraction: float = 0.5
    sw_threshold: float = 0.2
    sw_sigma_start: float = 3.0
    sw_sigma_end: float = 1.0
    guard_max_fraction: float = 0.5
    guard_loss_ratio: float = 1.5
    guard_loss_tol: float = 0.005
    sw_backoff: float = 0.8
    free_fraction: float = 0.05
    free_island: int = 1
    oss_stages: int = 10
    rank_by: str = "free"
    average: int = 3
    average_error_ratio: float = 1.5
    average_tolerance: float = 0.25
    fused: bool = True

    def __post_init__(self):
        object.__setattr__(self, "recipe", str(parse(self.recipe)))
        checks = [
            ("starts", self.starts >= 1, "at least 1"),
            ("beta", 0 < self.beta <= 1, "in (0, 1]"),
            ("support", self.support in SUPPORTS, f"one of {', '.join(SUPPORTS)}"),
            ("support_threshold", 0 < self.support_threshold < 1, "in (0, 1)"),
            ("support_sigma", self.support_sigma >= 0, ">= 0"),
            ("box_fraction", 0 < self.box_fraction <= 1, "in (0, 1]"),
            ("sw_threshold", 0 < self.sw_threshold < 1, "in (0, 1)"),
            ("sw_sigma_start", self.sw_sigma_start > 0, "> 0"),
            ("sw_sigma_end", self.sw_sigma_end > 0, "> 0"),
            ("guard_max_fraction", 0 < self.guard_max_fraction <= 1, "in (0, 1]"),
            ("guard_loss_ratio", self.guard_loss_ratio >= 1, ">= 1 (inf: off)"),
            ("guard_loss_tol", self.guard_loss_tol >= 0, ">= 0"),
            ("sw_backoff", 0 < self.sw_backoff <= 1, "in (0, 1]"),
            ("free_fraction", 0 <= self.free_fraction < 0.5, "in [0, 0.5)"),
            ("free_island", self.free_island >= 0, ">= 0"),
            ("oss_stages", self.oss_stages >= 1, "at least 1"),
            ("rank_by", self.rank_by in RANKINGS, f"one of {', '.join(RANKINGS)}"),
            ("average", self.average >= 1, "at least 1"),
            ("average_error_ratio", self.average_error_ratio >= 1, ">= 1"),
            ("average_tolerance", self.average_tolerance >= 0, ">= 0"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ValueError(f"option '{name}' must be {expected}, got {getattr(self, name)!r}")
