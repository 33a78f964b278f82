"""Reductions: how every rank's scaled gradient becomes the global batch's gradient.

A reduction is a small class behind one interface (Reduction); the data-parallel step
(distbp.dist.step) calls it in the same order whatever it does inside. It also supplies
what varies with it: micro-shards, evaluation, BLAS threads, the checkpoint fingerprint.
A new reduction is one new class and one entry in distbp.dist.choose.REDUCTIONS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from distbp.dist.comm import SerialComm
from distbp.dist.evaluate import evaluate
from distbp.dist.threads import auto_threads
from distbp.nn.sequential import Sequential
from distbp.optim.clip import clip_by_norm, squared_norm
from distbp.optim.optimizers import Optimizer

Array = np.ndarray


class Slot(IntEnum):
    """The statistics tail of a sync buffer: it rides with the gradients in the same
    reduction, so every rank learns these at no extra communication cost."""

    LOSS = 0  # this rank's loss sum / global batch size
    NONFINITE = 1  # this rank saw a NaN or infinity
    STOP = 2  # this rank was asked to stop (SIGTERM)
    OVERFLOW = 3  # fixed point only: a value beyond this step's scales


FLOAT_SLOTS = 3  # LOSS, NONFINITE, STOP


@dataclass
class StepResult:
    """What every rank learns from one reduction."""

    loss: float  # mean loss of the global batch
    nonfinite: bool  # some rank saw a NaN or infinity: the update was skipped everywhere
    stop: bool  # some rank asked to stop (e.g. SIGTERM): every rank stops after this step
    grad_norm: float | None = None  # the global gradient's norm before clipping, if clipped


class Reduction:
    """The interface. Per step the data-parallel step calls begin(), then add() after
    each chunk's backward, seal(), reduce() (None: compute the step again), update()
    unless the result is non-finite, and finish()."""

    shard_size: int | None = None  # fixed micro-shard rows that ranks take whole; None: any
    accumulates = True  # chunks' backward adds into model.flat_grads (False: add() takes each)
    evaluate = staticmethod(evaluate)  # exact distributed evaluation of a test set

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        """Take over the model's gradient buffer (and maybe parameters, optimizer state)."""
        self.model, self.optimizer, self.comm = model, optimizer, comm

    def blas_threads(self, local_size: int) -> int:
        """BLAS threads per rank when the user sets none: the node's cores shared out."""
        return auto_threads(local_size)

    def describe(self) -> str:
        """The reduction as the start line names it."""
        return type(self).__name__

    def wire_bytes(self) -> int:
        """Gradient bytes this rank's node has sent between nodes so far (0: none, or
        unknown)."""
        return 0

    def fingerprint(self) -> tuple[bool, int | None]:
        """What a checkpoint must agree on: (exact, micro-shard size)."""
        return (False, None)

    def begin(self, count: int, global_count: int) -> None:
        """A step starts: `count` local rows of a global batch of `global_count`."""
        raise NotImplementedError

    def add(self, loss_sum: float) -> None:
        """One chunk's loss sum; its gradient is in (or added to) model.flat_grads."""
        raise NotImplementedError

    def seal(self, stop: bool) -> None:
        """The local part is complete: fill the statistics tail."""
        raise NotImplementedError

    def reduce(self) -> StepResult | None:
        """Sum over ranks; None when every rank must compute the step again."""
        raise NotImplementedError

    def clip(self, max_norm: float) -> float:
        """Clip the reduced gradient to a global norm of max_norm; returns the norm before.
        Here the whole reduced gradient is in model.flat_grads, the same on every rank."""
        norm = math.sqrt(squared_norm(self.model.flat_grads))
        clip_by_norm(self.model.flat_grads, norm, max_norm)
        return norm

    def update(self) -> None:
        """Apply the optimizer to the part of the parameters this rank owns."""
        self.optimizer.step()

    def finish(self) -> None:
        """After the update: the next step may start."""

    def state(self) -> dict[str, Array]:
        """Arrays a checkpoint must keep besides parameters and optimizer state. Called on
        every rank (it may communicate); rank 0's are saved."""
        return {}

    def load_state(self, arrays: dict[str, Array]) -> None:
        """Restore what state() returned."""

    def broadcast_parameters(self, root: int = 0) -> None:
        """Every rank starts from root's parameters."""
        self.comm.Bcast(self.model.flat_params, root=root)

    def broadcast_state(self) -> None:
        """Every rank gets rank 0's parameters, model state (running statistics) and
        optimizer state (after a restore)."""
        self.comm.Bcast(self.model.flat_params)
        self.comm.Bcast(self.model.flat_state)
        for buffer in self.optimizer.state().values():
            self.comm.Bcast(buffer)


class FloatSum(Reduction):
    """Shared by the float reductions: chunks accumulate in the model's gradient buffer,
    which is the head of `buffer` (gradients, then the statistics tail)."""

    buffer: Array
    stats: Array

    def use_buffer(self, buffer: Array, copy: bool = True) -> None:
        """Adopt `buffer` (gradients, then the tail) as the model's gradient buffer."""
        size = self.model.num_parameters
        self.buffer, self.stats = buffer, buffer[size:]
        self.model.use_grad_buffer(buffer[:size], copy=copy)

    def begin(self, count: int, global_count: int) -> None:
        self.loss_sum, self.scale = 0.0, 1.0 / global_count
        if count == 0:  # an empty shard contributes zeros (otherwise backward overwrites)
            self.model.flat_grads[...] = 0

    def add(self, loss_sum: float) -> None:
        self.loss_sum += loss_sum

    def seal(self, stop: bool) -> None:
        """Loss, non-finite flag (NaN/inf in the loss or any gradient) and stop flag."""
        grads = self.model.flat_grads
        finite = math.isfinite(self.loss_sum) and math.isfinite(float(np.dot(grads, grads)))
        self.stats[Slot.LOSS] = self.loss_sum * self.scale if finite else 0.0
        self.stats[Slot.NONFINITE] = not finite
        self.stats[Slot.STOP] = stop


class AllreduceSum(FloatSum):
    """One in-place Allreduce SUM of the flat gradient buffer and its statistics tail."""

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        super().attach(model, optimizer, comm)
        self.use_buffer(np.zeros(model.num_parameters + FLOAT_SLOTS, dtype=model.dtype))

    def reduce(self) -> StepResult:
        self.comm.Allreduce(self.buffer)
        return result_of(self.stats)


def result_of(stats: Array) -> StepResult:
    """The StepResult of a reduced statistics tail."""
    return StepResult(float(stats[Slot.LOSS]), bool(stats[Slot.NONFINITE] > 0),
                      bool(stats[Slot.STOP] > 0))
