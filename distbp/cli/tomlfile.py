"""TOML config files for `python -m distbp.train`: the flags' names as keys (dashes or
underscores, once each), every value checked as strictly as the flag would be."""

from __future__ import annotations

import argparse

from distbp.errors import ConfigError, check


def read_toml(path: str) -> dict[str, object]:
    """The table in a TOML file; a missing or malformed file is one ConfigError."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError("--config needs Python >= 3.11 or `pip install tomli`") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text ({exc.reason} at byte "
                          f"{exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None


def defaults_from_file(parser: argparse.ArgumentParser, path: str) -> None:
    """Config-file values become defaults, checked as strictly as the flags would be."""
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}
    values, spelled = {}, {}
    for key, value in read_toml(path).items():
        dest = key.replace("-", "_")
        check(dest in actions, f"config file {path}: unknown key '{key}'")
        check(dest not in spelled, f"config file {path}: '{spelled.get(dest)}' and '{key}' "
                                   "are the same setting; give it once")
        spelled[dest] = key
        if dest == "hidden" and isinstance(value, list):
            value = ",".join(map(str, value))
        values[dest] = convert(actions[dest], value, f"config file {path}: '{key}'")
    parser.set_defaults(**values)


def convert(action: argparse.Action, value: object, where: str) -> object:
    """A config-file value checked as strictly as the flag's own parsing would."""
    if isinstance(action, argparse._StoreTrueAction):
        check(isinstance(value, bool), f"{where} must be true or false, got {value!r}")
    elif action.type is int:
        check(isinstance(value, int) and not isinstance(value, bool),
              f"{where} must be an integer, got {value!r}")
    elif action.type is float:
        check(isinstance(value, (int, float)) and not isinstance(value, bool),
              f"{where} must be a number, got {value!r}")
        value = float(value)
    else:
        check(isinstance(value, str), f"{where} must be a string, got {value!r}")
    check(not action.choices or value in action.choices,
          f"{where} must be one of {', '.join(action.choices or ())}, got {value!r}")
    return value
