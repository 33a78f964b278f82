"""Errors distbp raises on purpose, and the one-line check helper.

A ConfigError is bad input; a CollectiveError is raised identically on every rank.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input from the user: shapes, sizes, dtypes, flags, files."""


class CollectiveError(ConfigError):
    """An error every rank raises together, after agreeing on it collectively."""


def check(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless condition holds."""
    if not condition:
        raise ConfigError(message)
