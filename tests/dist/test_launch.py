"""The start-up check of what the launcher says against what MPI says."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distbp.dist.launch import check_launch, slurm_description


@pytest.mark.parametrize("environ,size", [
    ({}, 1),                                                        # plain python
    ({"PMI_SIZE": "4", "SLURM_NTASKS": "4"}, 4),                    # srun --mpi=pmi2 / mpirun
    ({"SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "8"}, 4),        # a step of a bigger job
    ({"PMI_SIZE": "2", "SLURM_NTASKS": "4"}, 2),                    # mpirun -n 2 in a -n 4 job
    ({"SLURM_NTASKS": "1", "SLURM_STEP_NUM_TASKS": "1"}, 1),
    ({"SLURM_NTASKS": "4", "DISTBP_SERIAL": "1"}, 1),               # explicitly serial
])
def test_consistent_launches_pass(environ, size):
    check_launch(size, environ)


@pytest.mark.parametrize("environ,size,message", [
    ({"SLURM_STEP_NUM_TASKS": "4", "SLURM_NTASKS": "4"}, 1,
     "srun started 4 tasks (SLURM_STEP_NUM_TASKS=4) but MPI sees a single rank"),
    ({"SLURM_NTASKS": "4"}, 1, "the Slurm allocation has 4 tasks (SLURM_NTASKS=4) but MPI"),
    ({"OMPI_COMM_WORLD_SIZE": "2"}, 1, "Open MPI's mpirun started 2 tasks"),
    ({"PMI_SIZE": "4"}, 2, "MPI reports 2 ranks but the launcher says 4 tasks (PMI_SIZE=4)"),
])
def test_classic_mistakes_are_refused(environ, size, message):
    with pytest.raises(ValueError, match="srun --mpi=pmi2") as info:
        check_launch(size, environ)
    assert message in str(info.value)


def test_slurm_description():
    assert slurm_description({}) == ""
    assert slurm_description({"SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0",
                              "SLURM_JOB_NODELIST": "n[1-2]"}) == "Slurm job 42 step 0 on n[1-2]"


def test_open_mpis_mpirun_with_this_environments_mpich_is_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PMI_", "OMPI_"))}
    env.update(OMPI_COMM_WORLD_SIZE="2", OMPI_COMM_WORLD_RANK="0")  # as Open MPI sets them
    result = subprocess.run([sys.executable, "-m", "distbp.train"], env=env, timeout=60,
                            capture_output=True, text=True)
    if result.returncode == 0:
        pytest.skip("no mpich wheel here: Open MPI may be this environment's own launcher")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "distbp.train: error: launched by Open MPI's mpirun (OMPI_COMM_WORLD_SIZE is set), but "
        "this environment's MPI is MPICH: launch with its own mpirun, "
        f"{Path(sys.executable).parent / 'mpirun'} -n N {Path(sys.executable).name} -m "
        "distbp.train ..."]
