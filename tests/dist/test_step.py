"""The data-parallel step (distbp.dist.step) == single process: gradients, micro-batches,
trajectories under each float reduction, broadcast, BatchNorm and Dropout.

Written for any rank count, and marked `mpi`: test_under_mpirun.py runs the marked
suite under `mpirun -n N python -m pytest --with-mpi -m mpi` for N = 1, 2, 3, 4.
Expected values are computed on every rank by the serial code path on the whole batch.
"""

import hashlib

import numpy as np
import pytest

import distbp
from conftest import mlp, problem

from distbp.data.sampler import GlobalBatchSampler, shard_range
from distbp.dist.comm import SerialComm, world
from distbp.dist.reduction import AllreduceSum, Slot
from distbp.dist.hierarchical import HierarchicalSum
from distbp.dist.shared import SharedMemorySum
from distbp.dist.step import DataParallel

LOSS = distbp.SoftmaxCrossEntropy()
pytestmark = pytest.mark.mpi  # in-process MPI suite: test_under_mpirun.py runs it at 1-4 ranks


def distributed_gradient(model, x, y, comm, micro_batch_size=None):
    trainer = DataParallel(model, distbp.SGD(model, lr=0.0), LOSS, comm, micro_batch_size)
    start, stop = shard_range(len(x), comm.rank, comm.size)
    trainer.local_gradient(x[start:stop], y[start:stop], len(x))
    reduction = trainer.reduction
    comm.Allreduce(reduction.buffer)
    return model.flat_grads.copy(), float(reduction.stats[Slot.LOSS])


@pytest.mark.parametrize("global_batch", ["divisible", 37, 3])
@pytest.mark.parametrize("activation", [distbp.Tanh, distbp.ReLU, distbp.Sigmoid])
def test_gradient_equals_single_process_gradient(comm, global_batch, activation):
    count = 4 * comm.size if global_batch == "divisible" else global_batch
    x, y = problem(seed=count, count=count)
    reference = mlp([5, 7, 6, 3], activation, seed=11)
    mean_loss = reference.loss_and_backward(x, y, LOSS)
    grads, reduced_loss = distributed_gradient(mlp([5, 7, 6, 3], activation, seed=11), x, y,
                                               comm)
    np.testing.assert_allclose(grads, reference.flat_grads, rtol=1e-10, atol=1e-14)
    assert reduced_loss == pytest.approx(mean_loss, rel=1e-10)


@pytest.mark.parametrize("micro_batch_size", [1, 3, 100])
def test_micro_batches_give_the_same_gradient(comm, micro_batch_size):
    x, y = problem(seed=3, count=29)
    whole, _ = distributed_gradient(mlp([5, 8, 3], seed=2), x, y, comm)
    chunked, _ = distributed_gradient(mlp([5, 8, 3], seed=2), x, y, comm, micro_batch_size)
    np.testing.assert_allclose(chunked, whole, rtol=1e-12, atol=1e-15)


def fit(comm, make_optimizer, epochs=3, batch=23, reduction=AllreduceSum):
    """A few epochs of training; returns final parameters and per-step checksums."""
    x, y = problem(seed=7, count=150)
    model = mlp([5, 16, 16, 3], distbp.ReLU, seed=4)
    trainer = DataParallel(model, make_optimizer(model), LOSS, comm, reduction=reduction())
    trainer.broadcast_parameters()
    sampler = GlobalBatchSampler(len(x), batch, seed=9)
    checksums = []
    for epoch in range(epochs):
        for indices, count in sampler.local_batches(epoch, comm.rank, comm.size):
            trainer.step(x[indices], y[indices], count)
            checksums.append(hashlib.sha256(model.flat_params.tobytes()).hexdigest())
    return model.flat_params.copy(), checksums


@pytest.mark.parametrize("reduction", [AllreduceSum, SharedMemorySum, HierarchicalSum])
@pytest.mark.parametrize("make_optimizer", [
    lambda m: distbp.SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-3),
    lambda m: distbp.AdamW(m, lr=0.01),
], ids=["sgd_nesterov", "adamw"])
def test_trajectory_equals_single_process(comm, make_optimizer, reduction):
    params, checksums = fit(comm, make_optimizer, reduction=reduction)
    serial_params, _ = fit(SerialComm(), make_optimizer)
    np.testing.assert_allclose(params, serial_params, rtol=1e-9, atol=1e-12)
    everyone = comm.allgather(checksums)  # identical on all ranks after every step
    assert all(theirs == checksums for theirs in everyone)
    assert len(checksums) == 3 * 7


def test_broadcast_gives_every_rank_root_parameters(comm):
    model = mlp([4, 5, 2], seed=100 + comm.rank)  # deliberately different per rank
    trainer = DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, comm)
    trainer.broadcast_parameters()
    np.testing.assert_array_equal(model.flat_params, mlp([4, 5, 2], seed=100).flat_params)


def cnn_fit(comm, reduction, batch, steps=4):
    """A CNN with BatchNorm (global statistics) and Dropout (per-example masks)."""
    rng = np.random.default_rng(8)
    x, y = rng.standard_normal((60, 36)), rng.integers(0, 3, 60)
    model = distbp.Sequential([
        distbp.Reshape(1, 6, 6), distbp.Conv2D(1, 4, 3, padding=1), distbp.BatchNorm(4),
        distbp.ReLU(), distbp.MaxPool2D(2), distbp.Flatten(), distbp.Dropout(0.3),
        distbp.Dense(36, 8), distbp.BatchNorm(8), distbp.Tanh(), distbp.Dense(8, 3)],
        seed=2, dtype=np.float64)
    trainer = DataParallel(model, distbp.SGD(model, lr=0.05, momentum=0.9), LOSS, comm,
                           reduction=reduction(), seed=5)
    trainer.broadcast_parameters()
    sampler = GlobalBatchSampler(len(x), batch, seed=1)
    for step, (rows, count) in enumerate(sampler.local_batches(0, comm.rank, comm.size)):
        if step == steps:
            break
        trainer.step(x[rows], y[rows], count, rows=rows, step=step)
    return model


@pytest.mark.parametrize("reduction", [AllreduceSum, SharedMemorySum, HierarchicalSum])
@pytest.mark.parametrize("batch", [23, 3])
def test_cnn_with_batchnorm_and_dropout_is_rank_count_invariant(comm, reduction, batch):
    distributed = cnn_fit(comm, reduction, batch)
    serial = cnn_fit(SerialComm(), AllreduceSum, batch)
    np.testing.assert_allclose(distributed.flat_params, serial.flat_params, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(distributed.flat_state, serial.flat_state, rtol=1e-9,
                               atol=1e-12)  # running statistics too
    assert not np.array_equal(serial.flat_state, cnn_fit(SerialComm(), AllreduceSum, batch,
                                                         steps=0).flat_state)


def lstm_fit(comm, reduction, batch, clip=None, steps=4):
    """An LSTM on rows-as-time-steps input, with and without gradient clipping."""
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((40, 12)), rng.integers(0, 3, 40)
    model = distbp.Sequential([distbp.Reshape(4, 3), distbp.LSTM(3, 6, return_sequences=True),
                               distbp.RNN(6, 5), distbp.Dense(5, 3)], seed=2, dtype=np.float64)
    trainer = DataParallel(model, distbp.Adam(model, lr=0.05), LOSS, comm,
                           reduction=reduction(), clip_grad_norm=clip)
    trainer.broadcast_parameters()
    sampler, norms = GlobalBatchSampler(len(x), batch, seed=1), []
    for step, (rows, count) in enumerate(sampler.local_batches(0, comm.rank, comm.size)):
        if step == steps:
            break
        norms.append(trainer.step(x[rows], y[rows], count, rows=rows, step=step).grad_norm)
    return model, norms


@pytest.mark.parametrize("reduction", [AllreduceSum, SharedMemorySum, HierarchicalSum])
@pytest.mark.parametrize("batch,clip", [(13, None), (3, None), (13, 0.05), (3, 0.05)])
def test_recurrent_model_with_clipping_is_rank_count_invariant(comm, reduction, batch, clip):
    distributed, norms = lstm_fit(comm, reduction, batch, clip)
    serial, serial_norms = lstm_fit(SerialComm(), AllreduceSum, batch, clip)
    np.testing.assert_allclose(distributed.flat_params, serial.flat_params, rtol=1e-9,
                               atol=1e-12)
    if clip is None:
        assert norms == [None] * 4
    else:  # the global batch's norm, the same on every rank and at every rank count
        np.testing.assert_allclose(norms, serial_norms, rtol=1e-9)
        assert all(n > clip for n in norms)  # clipping was active
        assert len(set(comm.allgather(tuple(norms)))) == 1
