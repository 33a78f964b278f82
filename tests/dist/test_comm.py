"""The communication module (distbp.dist.comm): serial is size 1, collective agreement,
and how a launch is recognised. (MPIComm itself runs in the MPI suite and every job.)"""

import sys

import numpy as np
import pytest

from distbp.dist import launch
from distbp.dist.comm import SerialComm, world
from distbp.dist.launch import launcher_rank
from distbp.errors import CollectiveError, ConfigError


def test_serial_verbs_are_the_identity():
    comm = SerialComm()
    buffer = np.arange(4.0)
    comm.Allreduce(buffer)
    comm.Allreduce(buffer, op="max")
    comm.Bcast(buffer)
    np.testing.assert_array_equal(buffer, np.arange(4.0))
    assert comm.allgather("x") == ["x"] and comm.bcast({"a": 1}) == {"a": 1}
    assert comm.is_root and (comm.rank, comm.size, comm.nodes) == (0, 1, 1)
    shared = comm.node_shared(3, np.float32)
    assert len(shared) == 1 and shared[0].shape == (3,) and shared[0].dtype == np.float32


def test_agreement_raises_one_collective_error():
    comm = SerialComm()
    assert comm.run_agreed(lambda: 42) == 42

    def bad():
        raise ConfigError("no such file")

    with pytest.raises(CollectiveError, match="^no such file$"):
        comm.run_agreed(bad)
    with pytest.raises(ZeroDivisionError):  # not bad input: not agreed, it aborts the job
        comm.run_agreed(lambda: 1 / 0)


def test_world_is_serial_without_a_launcher(monkeypatch):
    for name in (*launch.LAUNCHER_RANK_VARS, *launch.LAUNCHER_SIZE_VARS):
        monkeypatch.delenv(name, raising=False)
    assert type(world()) is SerialComm
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("DISTBP_SERIAL", "1")
    assert type(world()) is SerialComm


def test_several_tasks_without_mpi4py_is_an_error(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "4")
    monkeypatch.setenv("PMI_RANK", "2")
    monkeypatch.delenv("DISTBP_SERIAL", raising=False)
    monkeypatch.setitem(sys.modules, "mpi4py", None)  # import fails
    with pytest.raises(ConfigError, match="launched as 4 MPI tasks but mpi4py is not installed"):
        world()
    assert launcher_rank() == 2
