"""The fixed-point reduction (distbp.dist.fixedpoint): an overflowing step is redone and
stays bitwise identical to one process. MPI suite (see test_step)."""

import hashlib

import numpy as np
import pytest

from conftest import exact_fit, mlp, problem

import distbp
from distbp.data.sampler import GlobalBatchSampler
from distbp.dist.comm import SerialComm, world
from distbp.dist.fixedpoint import FixedPointSum, scales_for
from distbp.dist.step import DataParallel

LOSS = distbp.SoftmaxCrossEntropy()


@pytest.mark.mpi  # in-process MPI suite: test_under_mpirun.py runs it at 1-4 ranks
def test_exact_mode_redoes_an_overflowing_step_and_stays_identical(comm):
    small, large = problem(seed=1, count=45), problem(seed=2, count=45)
    # a gradient 1e7 times larger than the step before overflows the previous scale
    batches = [(small[0] * 1e-4, small[1]), (large[0] * 1e3, large[1]), small]
    trainer, params = exact_fit(comm, FixedPointSum(shard_size=7), batches)
    serial_trainer, serial_params = exact_fit(SerialComm(), FixedPointSum(shard_size=7), batches)
    assert trainer.reduction.redone_steps == serial_trainer.reduction.redone_steps >= 1
    assert hashlib.sha256(params.tobytes()).digest() == \
        hashlib.sha256(serial_params.tobytes()).digest()
    assert all(theirs == params.tobytes() for theirs in comm.allgather(params.tobytes()))


def test_scales_keep_the_maximum_below_the_bit_budget():
    maxima = np.array([1.0, 3.0, 0.0, 1e-40])
    scales = scales_for(maxima, 40)
    assert list(scales) == [40, 38, 40, 100]  # a zero tensor gets `bits`; clamped
    assert all(m * 2.0 ** s <= 2.0 ** 40 for m, s in zip(maxima, scales, strict=True))


def test_fixed_point_refuses_batchnorm_and_bad_shard_sizes():
    model = distbp.Sequential([distbp.Dense(3, 3), distbp.BatchNorm(3)])
    with pytest.raises(ValueError, match="--exact does not support BatchNorm"):
        DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, reduction=FixedPointSum())
    with pytest.raises(ValueError, match="exact micro-shard size must be > 0"):
        FixedPointSum(shard_size=0)


def test_each_shard_is_scaled_truncated_and_summed_as_integers():
    model = mlp([5, 16, 3], seed=4, dtype=np.float32)
    reduction = FixedPointSum(shard_size=7)
    DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, reduction=reduction)
    reduction.scales = np.array([30, 40, 35, 44])  # per tensor: W1, b1, W2, b2
    reduction.begin(14, 14)
    rng, expected = np.random.default_rng(6), np.zeros(model.num_parameters, np.int64)
    for loss_sum in (1.0, 2.0):  # two micro-shards
        grads = (rng.standard_normal(model.num_parameters) * 1e-3).astype(np.float32)
        model.flat_grads[...] = grads
        reduction.add(loss_sum)
        for part, s in zip(reduction.parts, reduction.scales, strict=True):
            scaled = grads[part] * np.float32(2.0 ** s)  # exact: a power of two
            expected[part] += np.trunc(scaled.astype(np.float64)).astype(np.int64)
    assert not reduction.stats[1:].any()  # neither non-finite nor overflowing
    np.testing.assert_array_equal(reduction.ints, expected)
    assert np.abs(reduction.ints).max() > 2 ** 20
