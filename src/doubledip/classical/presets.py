"""Named classical methods (presets) and the ``solve`` entry point of the method registry.

Every preset is a recipe plus option defaults, registered with
:func:`doubledip.methods.register` under its name; ``recipe`` runs any recipe
given in the options.  :data:`PRESETS` documents them (the README table is
made from it).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np
import torch

from doubledip import methods
from doubledip.classical.engine import Engine
from doubledip.classical.options import DEFAULT_RECIPE, ClassicalOptions
from doubledip.config import options_dict
from doubledip.errors import ConfigError, DataError
from doubledip.result import Result

__all__ = ["PRESETS", "solve", "solve_keeping_starts", "options_class", "resolve_device"]

PRESETS: dict[str, dict] = {
    "hio-er-sw": dict(
        recipe=DEFAULT_RECIPE,
        description="the standard baseline, 1500 iterations: HIO (beta 0.8) with shrink-wrap every 20 "
        "iterations (sigma 3 -> 1 px, threshold 0.2 of the maximum, guarded: backed off where the support "
        "collapses), then 300 RAAR and 200 error-reduction iterations on the final support",
    ),
    "raar-er-sw": dict(
        recipe="100*RAAR + 45*(20*RAAR + SW) + 200*ER",
        description="as hio-er-sw with RAAR (beta 0.8) throughout, the PyNX default algorithm",
    ),
    "dm-er-sw": dict(
        recipe="100*DM + 45*(20*DM + SW) + 200*ER",
        description="as hio-er-sw with the difference map (beta 0.8); two transform pairs per iteration",
    ),
    "oss": dict(
        recipe="1000*OSS + 200*ER",
        description="oversampling smoothness on the fixed initial support (no shrink-wrap), then error reduction",
    ),
    "hio": dict(recipe="1000*HIO + 200*ER", description="HIO then error reduction on the fixed initial support"),
    "raar": dict(recipe="1000*RAAR + 200*ER", description="RAAR then error reduction on the fixed initial support"),
    "dm": dict(recipe="500*DM + 200*ER", description="difference map then error reduction on the fixed initial support"),
    "er": dict(recipe="1000*ER", description="error reduction alone on the fixed initial support (stagnates; a reference)"),
    "recipe": dict(
        recipe=DEFAULT_RECIPE,
        description="any recipe, given with --recipe or the 'recipe' option (default: the hio-er-sw recipe)",
    ),
}
"""Preset name -> ``recipe``, ``description`` and optional ``options`` (other defaults)."""


@functools.cache
def options_class(name: str) -> type:
    """The options dataclass of preset ``name``: :class:`ClassicalOptions` with the preset's defaults."""
    preset = PRESETS[name]
    defaults = {"recipe": preset["recipe"], **preset.get("options", {})}
    hints = {f.name: f.type for f in dataclasses.fields(ClassicalOptions)}
    fields = [(k, hints[k], dataclasses.field(default=v)) for k, v in defaults.items()]
    cls_name = "".join(part.capitalize() for part in name.split("-")) + "Options"
    cls = dataclasses.make_dataclass(cls_name, fields, bases=(ClassicalOptions,), frozen=True,
                                     namespace={"__module__": __name__})
    cls.__doc__ = f"Options of the '{name}' method ({preset['description']}).\n\n" + (ClassicalOptions.__doc__ or "")
    return cls


def resolve_device(device) -> torch.device:
    """``device`` as a :class:`torch.device`; CUDA without a GPU is a :class:`ConfigError`."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigError(f"device '{device}' is not valid ({err}); use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}': CUDA is not available on this machine; use cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"device '{device}' is not supported; use cpu or cuda")
    return dev


def _check_measurement(measurement) -> None:
    intensity = np.asarray(measurement.intensity)
    source = getattr(measurement, "source", "") or "measurement"
    if intensity.ndim not in (1, 2, 3):
        raise DataError(source, f"pattern has {intensity.ndim} axes", "give a 2D or 3D pattern")
    mask = getattr(measurement, "mask", None)
    if mask is not None and np.shape(mask) != intensity.shape:
        raise DataError(source, f"mask shape {np.shape(mask)} differs from the pattern {intensity.shape}",
                        "give a mask of the pattern's shape")
    valid = np.isfinite(intensity) & (True if mask is None else (np.asarray(mask) == 0))
    if not np.any(intensity[valid] > 0):
        raise DataError(source, "no measured pixel has a positive intensity", "check the pattern and its mask")


def solve(measurement, options: ClassicalOptions, *, seed: int = 0, device="cpu", callback=None,
          method: str = "recipe") -> Result:
    """Run a classical recipe on a measurement with ``options.starts`` batched random starts.

    Parameters
    ----------
    measurement : doubledip.io.Measurement
        ``intensity`` in detector convention and ``mask`` (nonzero = unmeasured).
    options : ClassicalOptions
        Including the recipe (see :mod:`doubledip.classical.recipe`).
    seed : int
        Seeds the held-out pixels and every start (recorded in the result).
    device : str or torch.device
        ``"cpu"`` or ``"cuda"`` (``"cuda:N"``).
    callback : callable, optional
        ``callback(dict(iteration, total, loss, free_loss, operation))`` for progress.
    method : str
        Name recorded in ``result.config["method"]``.

    Returns
    -------
    Result
        The start with the lowest free error (``options.rank_by``), centred, global
        phase fixed; ``config`` holds the method, every option (the recipe in
        canonical text), the seed, the device and the run's summary.
    """
    return solve_keeping_starts(measurement, options, seed=seed, device=device, callback=callback, method=method,
                                keep_starts=False)[0]


def solve_keeping_starts(measurement, options: ClassicalOptions, *, seed: int = 0, device="cpu", callback=None,
                         method: str = "recipe", keep_starts: bool = True) -> tuple[Result, np.ndarray | None]:
    """:func:`solve`, also returning every start's final estimate (for the PRTF over restarts).

    Returns
    -------
    result : Result
        Exactly what :func:`solve` returns.
    objects : ndarray, complex64, shape ``(starts, *grid)``, or None
        Every start's estimate in the file conventions (centred, global phase fixed);
        None when ``keep_starts`` is False.
    """
    t0 = time.perf_counter()
    dev = resolve_device(device)
    _check_measurement(measurement)
    engine = Engine.from_measurement(measurement, options=options, seed=seed, device=dev)
    engine.run(options.recipe, callback=callback)
    config = {"method": method, **options_dict(options), "seed": int(seed), "device": str(dev),
              "pattern_shape": list(np.shape(measurement.intensity))}
    result = engine.result(config)
    objects = engine.objects()[0].astype(np.complex64) if keep_starts else None
    result.timings["total"] = time.perf_counter() - t0
    return result, objects


for _name, _preset in PRESETS.items():
    methods.register(_name, functools.partial(solve, method=_name), options_class(_name), _preset["description"])
