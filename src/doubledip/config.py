"""Options as frozen dataclasses: unknown names are errors, TOML files can set any."""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from pathlib import Path
from typing import Any

from doubledip.errors import ConfigError, DataError

__all__ = ["make_options", "options_dict", "load_toml"]


def _check_type(cls, name: str, value: Any, source: str):
    hint = typing.get_type_hints(cls)[name]
    origin = typing.get_origin(hint)
    allowed = typing.get_args(hint) if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) else (hint,)
    allowed = tuple(typing.get_origin(a) or a for a in allowed)
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(None) in allowed and value is None:
        return value
    if tuple in allowed and isinstance(value, list):
        return tuple(value)
    if not isinstance(value, tuple(a for a in allowed if isinstance(a, type))) or (
        isinstance(value, bool) and bool not in allowed
    ):
        names = ", ".join(getattr(a, "__name__", str(a)) for a in allowed)
        raise ConfigError(f"{source}: option '{name}' must be {names}, got {value!r}")
    return value


def make_options(cls, mapping: dict[str, Any] | None = None, *, source: str = "options", **overrides):
    """Build the frozen options dataclass ``cls`` from a mapping and keyword overrides.

    Raises :class:`~doubledip.errors.ConfigError` naming every unknown option and
    listing the known ones, or naming an option of the wrong type.
    """
    values = dict(mapping or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"{source}: unknown option(s) {', '.join(unknown)}; known options are {', '.join(known)}"
        )
    checked = {k: _check_type(cls, k, v, source) for k, v in values.items()}
    try:
        return cls(**checked)
    except ValueError as err:
        raise ConfigError(f"{source}: {err}") from None


def options_dict(options) -> dict[str, Any]:
    """The options as a JSON-serialisable dict (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(options).items()}


def load_toml(path) -> dict[str, Any]:
    """Read a TOML configuration file; a broken file raises :class:`DataError`."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise DataError(path, "no such file", "check the path given to --config") from None
    except tomllib.TOMLDecodeError as err:
        raise DataError(path, f"not valid TOML ({err})", "fix the syntax of the configuration file") from None
