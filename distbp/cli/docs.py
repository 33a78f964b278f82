"""The generated parts of the documentation: the README's flag table (from the parser) and
docs/api.md (from the docstrings). Tests keep both files equal to what these make."""

from __future__ import annotations

import argparse
import inspect

import distbp
from distbp.cli.config import GROUPS, build_parser


def flag_table() -> str:
    """The README's flag table, made from the parser (a test keeps the README equal)."""
    parser = build_parser()
    actions = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    rows = ["| flag | default | meaning |", "|---|---|---|"]
    for group, flags in GROUPS.items():
        rows.append(f"| **{group}** | | |")
        for flag in flags:
            action = actions[flag]
            default = ("off" if isinstance(action, argparse._StoreTrueAction)
                       else "" if action.default is None else f"`{action.default}`")
            choices = f" ({', '.join(map(str, action.choices))})" if action.choices else ""
            meaning = f"{action.help.replace('%%', '%')}{choices}"
            meaning = meaning.replace("<", "&lt;").replace(">", "&gt;")
            rows.append(f"| `{flag}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


def api_reference() -> str:
    """docs/api.md: every name `import distbp` exports, its signature and its docstring's
    first paragraph (a test keeps the file equal to this)."""
    lines = ["# distbp API reference", "",
             "Made from the docstrings by `python scripts/api_reference.py > docs/api.md`; "
             "a test keeps this file equal. How to write a layer: README, "
             "[Writing your own layer](../README.md#writing-your-own-layer).", ""]
    for name in distbp.__all__:
        item = getattr(distbp, name)
        try:
            signature = str(inspect.signature(item))
        except (TypeError, ValueError):
            signature = ""
        kind = "class" if inspect.isclass(item) else "function"
        doc = (inspect.getdoc(item) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"## `distbp.{name}{signature}`", "", f"*{kind}* {doc}", ""]
    return "\n".join(lines)
