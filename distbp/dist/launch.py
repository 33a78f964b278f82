"""Start-up sanity check: what the launcher (Slurm, mpirun) says against what MPI says.

Catches the classic mistakes: N independent copies each believing it is rank 0
(srun without PMI, an mpirun of another MPI family, python run directly in a
multi-task allocation), and a rank count that disagrees with Slurm's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from distbp.errors import ConfigError

FIX = ("launch with `srun --mpi=pmi2 python -m distbp.train ...` (or this environment's "
       "own `mpirun -n N`), and use an mpi4py built against the MPI library that launches it")


def expected_tasks(environ: Mapping[str, str]) -> tuple[int, str] | None:
    """(task count, the variable that says so), from the launcher that started us."""
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS"):
        value = environ.get(name, "")
        if value.isdigit():
            return int(value), name
    return None


def check_launch(mpi_size: int, environ: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError when the launcher's task count and MPI's size disagree."""
    environ = os.environ if environ is None else environ
    if environ.get("DISTBP_SERIAL") == "1":
        return
    expected = expected_tasks(environ)
    if expected is None or expected[0] == mpi_size:
        return
    count, name = expected
    if mpi_size == 1:
        where = {"SLURM_NTASKS": "the Slurm allocation has",
                 "SLURM_STEP_NUM_TASKS": "srun started",
                 "OMPI_COMM_WORLD_SIZE": "Open MPI's mpirun started"}.get(
            name, "the launcher started")
        raise ConfigError(f"{where} {count} tasks ({name}={count}) but MPI sees a single rank: "
                          f"{count} independent copies would each train as rank 0; {FIX}")
    raise ConfigError(f"MPI reports {mpi_size} ranks but the launcher says {count} tasks "
                      f"({name}={count}); {FIX}")


def slurm_description(environ: Mapping[str, str] | None = None) -> str:
    """'Slurm job 42 (step 0) on node1,node2', or '' outside Slurm."""
    environ = os.environ if environ is None else environ
    job = environ.get("SLURM_JOB_ID")
    if not job:
        return ""
    step = environ.get("SLURM_STEP_ID")
    nodes = environ.get("SLURM_JOB_NODELIST", "?")
    return f"Slurm job {job}" + (f" step {step}" if step else "") + f" on {nodes}"
