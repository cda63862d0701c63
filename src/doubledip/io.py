"""File input and output (MINIMAL BOOTSTRAP VERSION - being completed).

Public API (stable; other modules code against it):

* ``Measurement`` dataclass: intensity (float32, detector convention), mask (uint8,
  nonzero = unmeasured), object (complex64 ground truth on the pattern grid or None),
  source (str), meta (dict).
* ``read_pattern(spec, *, mask=None) -> Measurement``
* ``read_mask(spec, shape=None, *, source=None) -> ndarray uint8``
* ``write_measurement(path, measurement)``  (.npz / .cxi, atomic)
* ``read_result(spec) -> Result`` / ``write_result(path, result)`` (.npz / .cxi, atomic)
* ``atomic_output(path)`` context manager yielding a temporary path renamed on success.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from doubledip.errors import DataError
from doubledip.result import Result

__all__ = [
    "Measurement",
    "read_pattern",
    "read_mask",
    "write_measurement",
    "read_result",
    "write_result",
    "atomic_output",
]


@dataclass
class Measurement:
    intensity: np.ndarray
    mask: np.ndarray
    object: np.ndarray | None = None
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ndim(self) -> int:
        return self.intensity.ndim


@contextlib.contextmanager
def atomic_output(path):
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def read_pattern(spec, *, mask=None) -> Measurement:
    path = Path(spec)
    with np.load(path) as z:
        intensity = z["intensity"].astype(np.float32)
        m = z["mask"].astype(np.uint8) if "mask" in z else np.zeros(intensity.shape, np.uint8)
        obj = z["object"].astype(np.complex64) if "object" in z else None
    return Measurement(intensity, m, obj, str(path))


def read_mask(spec, shape=None, *, source=None) -> np.ndarray:
    raise NotImplementedError


def write_measurement(path, measurement: Measurement) -> None:
    arrays = {"intensity": measurement.intensity.astype(np.float32), "mask": measurement.mask.astype(np.uint8)}
    if measurement.object is not None:
        arrays["object"] = measurement.object.astype(np.complex64)
    arrays["meta"] = np.array(json.dumps(measurement.meta))
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def write_result(path, result: Result) -> None:
    arrays = {"object": result.object, "support": result.support, "config": np.array(json.dumps(result.config)),
              "seed": np.array(result.seed), "timings": np.array(json.dumps(result.timings))}
    for k, v in result.history.items():
        arrays["history" if k == "loss" else f"history_{k}"] = v
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def read_result(spec) -> Result:
    with np.load(spec) as z:
        history = {("loss" if k == "history" else k[len("history_"):]): z[k] for k in z.files if k.startswith("history")}
        return Result(z["object"], z["support"], history, json.loads(str(z["config"])), int(z["seed"]),
                      json.loads(str(z["timings"])))
