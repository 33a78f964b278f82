"""The shared-memory reduction (distbp.dist.shared): one node only, and at one rank the
same bits as the Allreduce. (Several ranks: the MPI suite, test_step.)"""

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import mlp

import distbp
from distbp.dist.comm import SerialComm
from distbp.dist.reduction import AllreduceSum
from distbp.dist.shared import ALIGN, SharedMemorySum
from distbp.dist.step import DataParallel

LOSS = distbp.SoftmaxCrossEntropy()


def trajectory(reduction, rng_seed=3):
    rng = np.random.default_rng(rng_seed)
    model = mlp([6, 40, 3], distbp.ReLU, dtype=np.float32)
    trainer = DataParallel(model, distbp.AdamW(model, lr=0.01), LOSS, SerialComm(),
                           reduction=reduction)
    for _ in range(5):
        trainer.step(rng.standard_normal((16, 6)), rng.integers(0, 3, 16), 16)
    return hashlib.sha256(model.flat_params.tobytes()).hexdigest(), trainer.reduction


def test_one_rank_gives_the_allreduce_bits():
    shared_hash, shared = trajectory(SharedMemorySum())
    assert shared_hash == trajectory(AllreduceSum())[0]
    assert shared.part == slice(0, shared.model.num_parameters)  # one rank owns it all
    assert ALIGN == 16


def test_ranks_on_several_nodes_are_refused():
    model = mlp([2, 2])
    two_nodes = SimpleNamespace(nodes=2)
    with pytest.raises(ValueError, match="--reduce shared needs all ranks on one node"):
        SharedMemorySum().attach(model, distbp.SGD(model, lr=0.1), two_nodes)


def test_segments_are_summed_in_rank_order_in_the_output_precision():
    from distbp.dist.shared import sum_segments

    segments = [np.array([1e8, 1.0], np.float32), np.array([1.0, 2.0], np.float32),
                np.array([3.0, 4.0], np.float32)]
    stats = sum_segments(segments, slice(None), np.empty(2, np.float64))
    np.testing.assert_array_equal(stats, [1e8 + 4, 7])  # float32 would round 1e8 + 1 away
    part = sum_segments(segments[:1], slice(1, 2), np.empty(1, np.float32))
    np.testing.assert_array_equal(part, [1.0])  # one rank: a copy
