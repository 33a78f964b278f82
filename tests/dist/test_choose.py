"""Choosing a reduction (distbp.dist.choose): 'auto', the table, make_trainer."""

from types import SimpleNamespace

import pytest
from conftest import mlp

import distbp
from distbp.dist.choose import REDUCTIONS, make_trainer, resolve
from distbp.dist.comm import SerialComm
from distbp.dist.fixedpoint import FixedPointSum
from distbp.dist.reduction import AllreduceSum


def comm(size, nodes):
    return SimpleNamespace(size=size, nodes=nodes)


def test_auto_shares_memory_on_one_node_with_several_ranks():
    assert resolve("auto", comm(4, 1)) == "shared"
    assert resolve("auto", comm(4, 2)) == "allreduce"
    assert resolve("auto", comm(1, 1)) == "allreduce"
    assert resolve("exact", comm(4, 1)) == "exact"
    with pytest.raises(ValueError, match="unknown reduce 'ring'"):
        resolve("ring", comm(1, 1))
    assert set(REDUCTIONS) == {"allreduce", "shared", "exact"}


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
