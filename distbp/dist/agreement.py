"""One configuration fingerprint, compared by one function: across ranks at start-up, and
against the fingerprint a checkpoint was written with."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from distbp.dist.comm import SerialComm
from distbp.errors import CollectiveError


def describe(fingerprint: Mapping[str, Any]) -> dict[str, str]:
    """The fingerprint as strings (repr of each field): what is compared and stored."""
    return {key: repr(value) for key, value in fingerprint.items()}


def differences(versions: list[Mapping[str, str]], first: str,
                others: Callable[[list[int]], str]) -> list[str]:
    """Fields that differ from versions[0], as "'key' is A on FIRST but B on OTHERS",
    where OTHERS names the differing versions (by index) and B is the first of them."""
    reference = versions[0]
    problems = []
    for key in sorted(set().union(*versions)):
        differing = [index for index, fields in enumerate(versions)
                     if fields.get(key) != reference.get(key)]
        if differing:
            problems.append(f"'{key}' is {reference.get(key)} on {first} but "
                            f"{versions[differing[0]].get(key)} on {others(differing)}")
    return problems


def check_same_everywhere(comm: SerialComm, fingerprint: Mapping[str, Any]) -> None:
    """Raise the same CollectiveError on every rank if any field differs from rank 0's."""
    everyone = comm.allgather(describe(fingerprint))
    problems = differences(everyone, "rank 0",
                           lambda ranks: f"rank(s) {', '.join(map(str, ranks))}")
    if problems:
        raise CollectiveError("configuration differs across ranks: " + "; ".join(problems))
