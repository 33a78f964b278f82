"""Choosing a reduction (distbp.dist.choose): 'auto', the table, make_trainer."""

from types import SimpleNamespace

import pytest
from conftest import mlp

import distbp
from distbp.dist.choose import REDUCTIONS, make_trainer, resolve
from distbp.dist.comm import SerialComm
from distbp.dist.fixedpoint import FixedPointSum
from distbp.dist.reduction import AllreduceSum


def comm(size, nodes, local_sizes=(1,)):
    return SimpleNamespace(size=size, nodes=nodes, local_size=local_sizes[0],
                           allgather=lambda _: list(local_sizes))


def test_auto_shares_memory_on_one_node_and_goes_hierarchical_across_nodes():
    assert resolve("auto", comm(4, 1)) == "shared"
    assert resolve("auto", comm(4, 2, [2, 2, 2, 2])) == "hierarchical"
    assert resolve("auto", comm(2, 2, [1, 1])) == "allreduce"  # one rank per node: no gain
    assert resolve("auto", comm(3, 2, [2, 1, 2])) == "allreduce"  # uneven nodes
    assert resolve("auto", comm(1, 1)) == "allreduce"
    assert resolve("exact", comm(4, 1)) == "exact"
    with pytest.raises(ValueError, match="unknown reduce 'ring'"):
        resolve("ring", comm(1, 1))
    assert set(REDUCTIONS) == {"allreduce", "shared", "hierarchical", "exact", "exact-shared"}


def test_make_trainer_picks_the_reduction():
    model = mlp([3, 2])
    optimizer, loss = distbp.SGD(model, lr=0.1), distbp.SoftmaxCrossEntropy()
    trainer = make_trainer(model, optimizer, loss, SerialComm(), seed=4)
    assert isinstance(trainer.reduction, AllreduceSum) and trainer.seed == 4
    other = mlp([3, 2])
    exact = make_trainer(other, distbp.SGD(other, lr=0.1), loss, SerialComm(), exact=True,
                         exact_shard_size=16)
    assert isinstance(exact.reduction, FixedPointSum) and exact.reduction.shard_size == 16
    assert exact.reduction.blas_threads(4) == 1 and exact.reduction.fingerprint() == (True, 16)
