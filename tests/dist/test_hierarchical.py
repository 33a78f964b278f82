"""The hierarchical reduction (distbp.dist.hierarchical): at one rank the Allreduce's bits,
on one node the shared-memory sum's; uneven nodes are refused. Several ranks: the MPI
suite (test_step); several nodes: tests/cluster (the cluster in a box)."""

from types import SimpleNamespace

import numpy as np
import pytest
from conftest import mlp
from test_shared import trajectory

import distbp
from distbp.dist.comm import SerialComm
from distbp.dist.hierarchical import HierarchicalSum
from distbp.dist.reduction import AllreduceSum


def test_one_rank_gives_the_allreduce_bits():
    hashed, reduction = trajectory(HierarchicalSum())
    assert hashed == trajectory(AllreduceSum())[0]
    assert reduction.cross.size == 1 and reduction.counts_norm


def test_serial_cross_node_communicator_is_size_one():
    cross = SerialComm().cross_node()
    buffer = np.arange(3.0)
    cross.Allreduce(buffer)
    assert cross.size == 1 and cross.rank == 0 and buffer.tolist() == [0.0, 1.0, 2.0]


def test_uneven_nodes_are_refused():
    model = mlp([2, 2])
    uneven = SimpleNamespace(local_size=2, allgather=lambda _: [2, 2, 1])
    with pytest.raises(ValueError, match=r"needs the same number of ranks on every node, "
                                         r"got \[1, 2\] per node"):
        HierarchicalSum().attach(model, distbp.SGD(model, lr=0.1), uneven)
