"""Distributed evaluation (distbp.dist.evaluate): counts exactly those of the full set,
and exact mode's evaluation the same bits at any rank count. MPI suite (see test_step)."""

import numpy as np
import pytest

from conftest import mlp, problem

import distbp
from distbp.dist.comm import SerialComm, world
from distbp.dist.evaluate import evaluate, evaluate_exact

LOSS = distbp.SoftmaxCrossEntropy()
pytestmark = pytest.mark.mpi  # in-process MPI suite: test_under_mpirun.py runs it at 1-4 ranks


def test_distributed_evaluation_is_exact(comm):
    x, y = problem(seed=5, count=103)
    model = mlp([5, 9, 3], seed=6)
    serial = evaluate(model, LOSS, x, y, SerialComm())
    distributed = evaluate(model, LOSS, x, y, comm, chunk=10)
    assert distributed["count"] == serial["count"] == 103
    assert distributed["correct"] == serial["correct"] == LOSS.correct(model.forward(x), y)
    assert distributed["accuracy"] == serial["accuracy"]
    assert distributed["loss"] == pytest.approx(serial["loss"], rel=1e-12)


def test_exact_evaluation_has_the_same_bits_at_any_rank_count(comm):
    x, y = problem(seed=8, count=1030)
    model = mlp([5, 9, 3], seed=6, dtype=np.float32)
    distributed = evaluate_exact(model, LOSS, x, y, comm, chunk=100)
    serial = evaluate_exact(model, LOSS, x, y, SerialComm(), chunk=100)
    assert distributed == serial and distributed["count"] == 1030
