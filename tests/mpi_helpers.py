"""Launching this environment's own mpirun with this environment's python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def mpirun_path() -> str:
    """The mpirun next to sys.executable: another MPI family's would give N 1-rank jobs."""
    candidate = Path(sys.executable).parent / "mpirun"
    if candidate.exists():
        return str(candidate)
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        if os.environ.get("DISTBP_REQUIRE_MPI") == "1":  # set by .ci/run: never skip there
            pytest.fail("DISTBP_REQUIRE_MPI=1 but mpi4py is not installed")
        pytest.skip("mpi4py is not installed (pip install 'distbp[mpi]')")
    found = shutil.which("mpirun")
    if found is None:
        pytest.fail("mpi4py is installed but no mpirun was found beside python or on PATH")
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any launcher variables of an enclosing MPI job."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PMI_", "PMIX_", "OMPI_", "MPI_LOCAL", "HYDRA_"))}
    env.update(extra)
    return env


def run_mpi(ranks: int | list[tuple[int, list[str]]], args: list[str] | None = None,
            timeout: float = 120, fault: str | None = None,
            **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """mpirun -n ranks python args (or MPMD: [(n, args), ...]); returns (result, seconds).

    fault: RANK:STEP[:KIND], run the job through tests/faults.py with that fault."""
    command = [mpirun_path()]
    groups = [(ranks, args or [])] if isinstance(ranks, int) else ranks
    if fault is not None:
        env["DISTBP_FAULT_INJECT"] = fault
        groups = [(count, with_fault(group_args)) for count, group_args in groups]
    for index, (count, group_args) in enumerate(groups):
        command += ([":"] if index else []) + ["-n", str(count), sys.executable, *group_args]
    started, before = time.monotonic(), shared_segments()
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                            cwd=ROOT, env=clean_env(**env))
    seconds = time.monotonic() - started
    leaked = shared_segments() - before
    for stale in leaked:
        stale.unlink(missing_ok=True)
    assert not leaked, f"the job left {sorted(map(str, leaked))} in /dev/shm"  # any exit path
    return result, seconds


def with_fault(args: list[str]) -> list[str]:
    """`-m distbp.train FLAGS` as `tests/faults.py FLAGS`: the job with the fault hooks."""
    assert args[:2] == ["-m", "distbp.train"], args
    return [str(ROOT / "tests" / "faults.py"), *args[2:]]


def shared_segments() -> set[Path]:
    return set(Path("/dev/shm").glob("mpich_shm_*"))
