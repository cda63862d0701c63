"""Registry of reconstruction methods, so the CLI, benchmarks and batch runs share one entry point.

A method is a solver ``solve(measurement, options, *, seed, device, callback=None) -> Result``
with a frozen options dataclass.  Modules listed in ``_PROVIDERS`` register their methods
when first needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from doubledip.errors import ConfigError

__all__ = ["Method", "register", "get_method", "method_names"]

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


def register(name: str, solve, options_cls, description: str = "") -> None:
    """Make ``solve`` available as method ``name``."""
    _METHODS[name] = Method(name, solve, options_cls, description)


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
