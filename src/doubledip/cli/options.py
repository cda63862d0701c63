"""Shared CLI helpers: output paths, method options from --config TOML files and --set KEY=VALUE pairs."""

from __future__ import annotations

import tomllib
from pathlib import Path

from doubledip.config import load_toml
from doubledip.errors import ConfigError, UserError

__all__ = ["check_output_path", "parse_set", "method_tables"]


def check_output_path(path, suffixes, *, what: str = "output") -> Path:
    """The path of a file a command will write, checked before any work starts.

    Raises a one-line :class:`~doubledip.errors.UserError` when the suffix is not one
    of ``suffixes`` or the folder does not exist (nothing is written then).
    """
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise UserError(f"{out}: unknown {what} format '{out.suffix or '(no suffix)'}'; use a "
                        f"{' or '.join(suffixes)} file name")
    if not (out.parent if str(out.parent) else Path(".")).is_dir():
        raise UserError(f"{out}: the folder {out.parent} does not exist; create it or choose another path")
    return out


def parse_set(pairs: list[str] | None) -> dict[str, dict]:
    """``["ddip.iterations=300", "hio-er-sw.starts=3"]`` -> ``{"ddip": {"iterations": 300}, ...}``.

    Values are read as TOML values (numbers, booleans, quoted strings, arrays);
    anything that is not valid TOML is taken as a plain string.
    """
    tables: dict[str, dict] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        method, dot, option = key.strip().partition(".")
        if not sep or not dot or not method or not option:
            raise ConfigError(f"--set {pair!r}: expected METHOD.OPTION=VALUE, e.g. ddip.iterations=300")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        tables.setdefault(method, {})[option] = value
    return tables


def method_tables(config_path: str | None, pairs: list[str] | None) -> dict[str, dict]:
    """Per-method option tables from a TOML file (``[ddip]``, ``[hio-er-sw]`` tables),
    updated by ``--set`` pairs."""
    tables: dict[str, dict] = {}
    if config_path:
        for name, table in load_toml(config_path).items():
            if not isinstance(table, dict):
                raise ConfigError(f"{config_path}: top-level key '{name}' must be a [method] table of options")
            tables[name] = dict(table)
    for name, table in parse_set(pairs).items():
        tables.setdefault(name, {}).update(table)
    return tables
