"""Registry of reconstruction methods, so the CLI, benchmarks and batch runs share one entry point.

A method is a solver ``solve(measurement, options, *, seed, device, callback=None) -> Result``
with a frozen options dataclass.  Modules listed in ``_PROVIDERS`` register their methods
when first needed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable

import torch

from doubledip.errors import ConfigError

__all__ = ["Method", "register", "get_method", "method_names", "flush_denormals"]

_PROVIDERS = ["doubledip.classical.presets", "doubledip.dip.solver"]
_METHODS: dict[str, "Method"] = {}
_loaded = False


@dataclass(frozen=True)
class Method:
    """A named reconstruction method.

    Attributes
    ----------
    name : str
        What ``--method`` takes.
    solve : callable
        ``solve(measurement, options, *, seed, device, callback=None) -> Result``.
        ``callback(info: dict)`` is called with at least ``iteration``, ``total`` and
        ``loss`` so the caller can show progress; the solver never prints.
    options_cls : type
        Frozen dataclass of the method's options (documented defaults).
    description : str
        One line for ``--help`` and the README.
    """

    name: str
    solve: Callable[..., Any]
    options_cls: type
    description: str = ""


@contextlib.contextmanager
def flush_denormals():
    """Flush subnormal floats to zero on the CPU while the block runs.

    Iterates of the projection algorithms decay geometrically outside the
    support into subnormal numbers, whose arithmetic is about 100 times slower
    on x86 CPUs (a 128^2 HIO run went from 68 s to 9 s).  Flushing them changes
    results by less than 1e-38.  The flag is process-wide in PyTorch and has no
    getter, so it is switched off again on exit.  Threads of torch's pool inherit
    the flag only when they are created after it is set, which is why the
    command line sets it first thing.
    """
    changed = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if changed:
            torch.set_flush_denormal(False)


def register(name: str, solve, options_cls, description: str = "") -> None:
    """Make ``solve`` available as method ``name`` (run with subnormals flushed, see :func:`flush_denormals`)."""

    @functools.wraps(solve)
    def fast_solve(*args, **kwargs):
        with flush_denormals():
            return solve(*args, **kwargs)

    _METHODS[name] = Method(name, fast_solve, options_cls, description)


def _load() -> None:
    global _loaded
    if _loaded:
        return
    for module in _PROVIDERS:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name is None or not module.startswith(err.name):
                raise
    _loaded = True


def method_names() -> list[str]:
    """Names of every registered method."""
    _load()
    return sorted(_METHODS)


def get_method(name: str) -> Method:
    """The method called ``name``; an unknown name is a :class:`ConfigError` listing the known ones."""
    _load()
    try:
        return _METHODS[name]
    except KeyError:
        raise ConfigError(f"unknown method '{name}'; known methods are {', '.join(sorted(_METHODS))}") from None
