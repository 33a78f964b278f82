"""Shared test helpers: small models, a seeded generator, the job in this process. The
other helpers (mpirun, IDX files, a Slurm cluster, fault hooks) sit beside this file."""

from __future__ import annotations

import numpy as np
import pytest

import distbp
from distbp import train
from distbp.dist.comm import world


def mlp(sizes: list[int], activation=distbp.Tanh, seed: int = 0,
        dtype=np.float64) -> distbp.Sequential:
    layers: list[distbp.Layer] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(distbp.Dense(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(activation())
    return distbp.Sequential(layers, seed=seed, dtype=dtype)


@pytest.fixture(scope="module")
def comm():
    """COMM_WORLD under mpirun (the `mpi`-marked suite), else the serial communicator."""
    return world()


def problem(seed: int, count: int, features: int = 5, classes: int = 3):
    """Seeded standard-normal rows and integer labels."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((count, features)), rng.integers(0, classes, count)


def float64_model(*layers: distbp.Layer, seed: int = 1) -> distbp.Sequential:
    """Sequential of `layers` in float64, for gradient checks."""
    return distbp.Sequential(list(layers), seed=seed, dtype=np.float64)


def layer_gradcheck(layer: distbp.Layer, shape: tuple[int, ...]) -> float:
    """distbp.gradcheck of `layer` on a seeded standard-normal input of `shape`."""
    x = np.random.default_rng(11).standard_normal(shape)
    return distbp.gradcheck(layer, x, seed=3)


def exact_fit(comm, reduction, batches, hidden: int = 16, clip: float | None = None):
    """Exact-mode steps (Adam, micro-shards of 7) on (x, y) global batches of a 5-hidden-3
    tanh MLP; returns (trainer, final parameters)."""
    from distbp.data.sampler import GlobalBatchSampler
    from distbp.dist.step import DataParallel

    model = mlp([5, hidden, 3], distbp.Tanh, seed=4, dtype=np.float32)
    trainer = DataParallel(model, distbp.Adam(model, lr=0.01), distbp.SoftmaxCrossEntropy(),
                           comm, reduction=reduction, clip_grad_norm=clip)
    trainer.broadcast_parameters()
    for x, y in batches:
        rows = next(GlobalBatchSampler(len(x), len(x), seed=0).local_batches(
            0, comm.rank, comm.size, shard_size=7))[0]  # whole micro-shards of the batch
        trainer.step(x[rows], y[rows], len(x))
    return trainer, model.flat_params.copy()


def run_job(capsys, *flags: str) -> tuple[int, str, str]:
    """`python -m distbp.train --quiet FLAGS` in this process: (exit code, stdout, stderr)."""
    code = train.main(["--quiet", *flags])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
