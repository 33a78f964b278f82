"""Exact mode's shared-memory sum (distbp.dist.exactshared): the very bits of one process's
FixedPointSum at any rank count, through an overflow and redo, with clipping, from a
micro-shard-less rank. MPI suite (see test_step); in a plain process it runs as one rank."""

import hashlib

import numpy as np
import pytest
from conftest import exact_fit, mlp, problem

import distbp
from distbp.data.sampler import GlobalBatchSampler
from distbp.dist.choose import make_trainer
from distbp.dist.comm import SerialComm
from distbp.dist.exactshared import ExactSharedSum
from distbp.dist.fixedpoint import FixedPointSum
from distbp.dist.shared import SharedMemorySum
from distbp.dist.step import DataParallel

LOSS = distbp.SoftmaxCrossEntropy()


@pytest.mark.mpi  # in-process MPI suite: test_under_mpirun.py runs it at 1-4 ranks
@pytest.mark.parametrize("clip", [None, 0.05])
def test_shared_integers_give_one_process_bits(comm, clip):
    small, large = problem(seed=1, count=45), problem(seed=2, count=45)
    tiny = problem(seed=3, count=7)  # one micro-shard: every other rank has none
    # a gradient 1e7 times larger than the step before overflows the previous scale
    batches = [(small[0] * 1e-4, small[1]), (large[0] * 1e3, large[1]), small, tiny, small]
    # 363 parameters: the ranks' parts cut tensors
    trainer, params = exact_fit(comm, ExactSharedSum(shard_size=7), batches, 40, clip)
    serial, serial_params = exact_fit(SerialComm(), FixedPointSum(shard_size=7), batches, 40, clip)
    assert trainer.reduction.redone_steps == serial.reduction.redone_steps >= 1
    assert hashlib.sha256(params.tobytes()).digest() == \
        hashlib.sha256(serial_params.tobytes()).digest()
    assert all(theirs == params.tobytes() for theirs in comm.allgather(params.tobytes()))
    np.testing.assert_array_equal(trainer.reduction.scales, serial.reduction.scales)


@pytest.mark.mpi
def test_exact_mode_on_one_node_sums_in_shared_memory(comm):
    x, y = problem(seed=5, count=8)
    for exact in (True, False):  # 39 parameters: at 4 ranks the last part is empty
        model = mlp([5, 4, 3], seed=1, dtype=np.float32)
        trainer = make_trainer(model, distbp.SGD(model, lr=0.1), LOSS, comm, exact=exact,
                               exact_shard_size=2)
        if comm.size > 1:
            assert type(trainer.reduction) is (ExactSharedSum if exact else SharedMemorySum)
        mine = next(GlobalBatchSampler(8, 8, seed=0).local_batches(0, comm.rank, comm.size,
                                                                    shard_size=2))[0]
        trainer.step(x[mine], y[mine], 8)
        assert comm.allgather(model.flat_params.tobytes())[0] == model.flat_params.tobytes()
    forced = make_trainer(model, distbp.SGD(model, lr=0.1), LOSS, comm, "allreduce",
                          exact=True)
    assert type(forced.reduction) is FixedPointSum  # --reduce allreduce keeps the Allreduce


def test_shared_exact_mode_refuses_several_nodes():
    class TwoNodes(SerialComm):
        nodes = 2

    model = mlp([3, 2], dtype=np.float32)
    with pytest.raises(ValueError, match="needs all ranks on one node, this job has 2 nodes"):
        DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, TwoNodes(),
                     reduction=ExactSharedSum())
