"""Errors that mean "the user must fix something"; the CLI prints them on one line."""

from __future__ import annotations

__all__ = ["UserError", "DataError", "ConfigError"]


class UserError(Exception):
    """A mistake in the user's input; the CLI prints it and exits with code 2."""


class DataError(UserError):
    """A file that cannot be used, with the reason and the fix.

    ``str(err)`` is ``"<file>: <problem>; <fix>"``, one line.
    """

    def __init__(self, path, problem: str, fix: str):
        self.path = str(path)
        self.problem = problem
        self.fix = fix
        super().__init__(f"{self.path}: {problem}; {fix}")

    def __reduce__(self):  # picklable, so it crosses from a worker process intact
        return type(self), (self.path, self.problem, self.fix)


class ConfigError(UserError):
    """An unknown or invalid option (names the known ones)."""
