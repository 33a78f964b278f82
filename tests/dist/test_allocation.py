"""Steady-state data-parallel steps (distbp.dist.step, each reduction) allocate no activation- or parameter-sized arrays:
kernels write into workspace buffers and the optimizers into their scratch buffers."""

import gc
import tracemalloc

import numpy as np
import pytest
from conftest import mlp

import distbp
from distbp.dist.choose import REDUCTIONS
from distbp.dist.comm import SerialComm
from distbp.dist.step import DataParallel

BATCH, WIDTH = 128, 1024
OPTIMIZERS = {
    "sgd": lambda m: distbp.SGD(m, lr=0.01),
    "sgd_nesterov_wd": lambda m: distbp.SGD(m, lr=0.01, momentum=0.9, nesterov=True,
                                            weight_decay=1e-4),
    "adam_l2": lambda m: distbp.Adam(m, lr=1e-3, weight_decay=1e-4),
    "adamw": lambda m: distbp.AdamW(m, lr=1e-3),
}
TRAINERS = list(REDUCTIONS)  # every reduction in the table


CASES = [(distbp.ReLU, optimizer, trainer) for optimizer in OPTIMIZERS for trainer in TRAINERS]
CASES += [(activation, "sgd", "allreduce")
          for activation in (distbp.Tanh, distbp.Sigmoid, distbp.LeakyReLU)]


def step_allocations(width, activation, optimizer, trainer_kind):
    """(peak extra bytes during 10 steady-state steps, bytes still held after them)."""
    model = mlp([64, width, width, 10], activation, dtype=np.float32)
    trainer = DataParallel(model, OPTIMIZERS[optimizer](model), distbp.SoftmaxCrossEntropy(),
                           SerialComm(), reduction=REDUCTIONS[trainer_kind](128))
    return measure(trainer, features=64, steps=10)


def measure(trainer, features, steps):
    """(peak extra bytes during `steps` steady-state steps, bytes still held after them)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, features)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    for _ in range(3):  # warm-up: workspaces take their buffers
        trainer.step(x, y, BATCH)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(steps):
            trainer.step(x, y, BATCH)
        gc.collect()  # per-step array views are small objects: count what stays
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before, current - before


@pytest.mark.parametrize("activation,optimizer,trainer_kind", CASES)
def test_steady_state_steps_allocate_nothing_large(activation, optimizer, trainer_kind):
    small = step_allocations(WIDTH // 2, activation, optimizer, trainer_kind)
    large = step_allocations(WIDTH, activation, optimizer, trainer_kind)
    # Doubling the width doubles the activations (to 512 KiB) and triples the parameters
    # (to 4.3 MiB), but not what a step allocates: only numpy's fixed-size ufunc iterator
    # buffers (a broadcast add, a casting copy), never an activation or parameter array.
    assert abs(large[0] - small[0]) < 4096, f"allocations grow with the model: {small}, {large}"
    assert large[0] < BATCH * WIDTH * 4 / 2, f"a step allocated {large[0]} bytes"
    assert large[1] < 4096  # and nothing accumulates from step to step


def test_the_probe_sees_allocations():
    """The measurement itself works: an allocating step is caught."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        waste = np.ones((BATCH, WIDTH), dtype=np.float32) * 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak - before >= waste.nbytes


def recurrent_allocations(hidden):
    """Like step_allocations, for an LSTM and an RNN over 20 time steps, with clipping."""
    model = distbp.Sequential([distbp.Reshape(20, 8), distbp.LSTM(8, hidden, True),
                               distbp.RNN(hidden, hidden), distbp.Dense(hidden, 10)], seed=0)
    trainer = DataParallel(model, distbp.Adam(model, lr=1e-3), distbp.SoftmaxCrossEntropy(),
                           SerialComm(), micro_batch_size=BATCH // 2, clip_grad_norm=1.0)
    return measure(trainer, features=160, steps=5)


def test_recurrent_steps_allocate_nothing_large():
    small, large = recurrent_allocations(64), recurrent_allocations(256)
    # 16x the recurrent weights, 4x the states: what a step allocates does not grow; it is
    # small objects (views of each time step), never an activation (128 x 20 x 256 floats)
    assert abs(large[0] - small[0]) < 8192, (small, large)
    assert large[0] < BATCH * 20 * 256 * 4 / 8 and large[1] < 4096, large


def cnn_allocations(channels):
    """Like step_allocations, for a CNN whose first BatchNorm gets plain (B, C, H, W) input
    (a copy into a reused buffer) and whose other layers get images held (C, H, W, B)."""
    model = distbp.Sequential([
        distbp.Reshape(1, 16, 16), distbp.BatchNorm(1), distbp.Conv2D(1, channels, 3, 1, 1),
        distbp.BatchNorm(channels), distbp.ReLU(), distbp.MaxPool2D(2),
        distbp.Conv2D(channels, channels, 3, 1, 1), distbp.Tanh(), distbp.GlobalAvgPool2D(),
        distbp.Dense(channels, 10)], seed=0)
    trainer = DataParallel(model, distbp.AdamW(model, lr=1e-3), distbp.SoftmaxCrossEntropy(),
                           SerialComm())
    return measure(trainer, features=256, steps=5)


def test_cnn_steps_allocate_nothing_large():
    small, large = cnn_allocations(8), cnn_allocations(16)
    # twice the channels: twice the activations (128 x 16 x 16 x 16 floats = 2 MiB), but
    # not what a step allocates (views, iterator buffers, the per-channel statistics)
    assert abs(large[0] - small[0]) < 16384, (small, large)
    assert large[0] < BATCH * 16 * 16 * 16 * 4 / 16 and large[1] < 4096, large
