"""Start-up sanity check: what the launcher (Slurm, mpirun) says against what MPI says.

Catches the classic mistakes: N independent copies each believing it is rank 0
(srun without PMI, an mpirun of another MPI family, python run directly in a
multi-task allocation), and a rank count that disagrees with Slurm's.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from distbp.errors import ConfigError

# Set by the process managers we know of (MPICH hydra, PMI-1/2 via srun, PMIx, Open MPI).
LAUNCHER_RANK_VARS = ("PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK")
PRINTING_RANK_VARS = (*LAUNCHER_RANK_VARS, "SLURM_PROCID")
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def launcher_rank() -> int:
    """This process's rank as the launcher announced it (0 if not launched by one);
    decides who prints errors found before MPI starts."""
    for name in PRINTING_RANK_VARS:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return 0


def launched_under_mpi() -> bool:
    """Whether a launcher (mpirun, srun with PMI) started this process."""
    return any(name in os.environ for name in LAUNCHER_RANK_VARS + LAUNCHER_SIZE_VARS)


def check_launcher_family() -> None:
    """Open MPI's mpirun starting this environment's MPICH (the `mpich` wheel) would abort
    inside MPI_Init ("unsupported PMI version"): say which mpirun to use instead."""
    from importlib import metadata

    if "OMPI_COMM_WORLD_SIZE" not in os.environ:
        return
    try:
        metadata.distribution("mpich")
    except metadata.PackageNotFoundError:
        return  # an MPI of the user's own: Open MPI may be the right launcher
    mpirun = Path(sys.executable).parent / "mpirun"
    raise ConfigError(f"launched by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set), but this "
                      f"environment's MPI is MPICH: launch with its own mpirun, {mpirun} -n N "
                      f"{Path(sys.executable).name} -m distbp.train ...")


LAUNCHERS = ("mpiexec", "mpirun", "hydra_pmi_proxy", "mpiexec.hydra", "srun", "slurmstepd")


def launcher_on_terminal(pid: int | None = None, depth: int = 4) -> bool:
    """Whether the launcher that started this rank (mpirun, reached through its proxies)
    writes to a terminal: the ranks' own output is a pipe to it, so isatty() cannot say."""
    pid = os.getppid() if pid is None else pid
    for _ in range(depth):
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            if name in LAUNCHERS or name.startswith(("mpiexec", "mpirun")):
                target = os.readlink(f"/proc/{pid}/fd/2")
                if target.startswith(("/dev/pts/", "/dev/tty")):
                    return True
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid <= 1:
            return False
    return False


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
