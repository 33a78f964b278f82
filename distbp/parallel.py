"""The synchronous data-parallel step and exact distributed evaluation.

Each rank computes the gradient of (sum of its examples' losses) / (global batch size);
one in-place Allreduce SUM over the flat gradient buffer gives every rank exactly the
single-process mean gradient of the whole batch, for uneven and empty shards too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from distbp.comm import SerialComm
from distbp.data import shard_range
from distbp.errors import CollectiveError, check
from distbp.layers import StepContext
from distbp.losses import Loss
from distbp.model import Sequential
from distbp.optim import Optimizer
from distbp.timeline import OFF

Array = np.ndarray


@dataclass
class StepResult:
    loss: float  # mean loss of the global batch
    nonfinite: bool  # some rank saw a NaN or infinity: the update was skipped everywhere
    stop: bool  # some rank asked to stop (e.g. SIGTERM): every rank stops after this step


class DataParallel:
    """forward -> backward -> one fused Allreduce -> identical update on every rank.

    The gradient buffer carries three extra trailing elements, so the one Allreduce that
    syncs the gradients also tells every rank, at no extra communication cost, the
    global batch loss, whether any rank saw a non-finite value, and whether any rank
    was asked to stop.
    """

    def __init__(self, model: Sequential, optimizer: Optimizer, loss: Loss,
                 comm: SerialComm | None = None, micro_batch_size: int | None = None) -> None:
        check_micro_batches(model, micro_batch_size)
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.seed = 0  # Dropout masks: a function of (seed, step, example index)
        self.comm = comm or SerialComm()
        self.micro_batch_size = micro_batch_size
        self.timeline = OFF  # set a Timeline to see where the time goes
        size = model.num_parameters
        self.sync_buffer = np.zeros(size + 3, dtype=model.dtype)  # grads, loss, flags
        self.stats = self.sync_buffer[size:]  # [loss sum / global count, nonfinite, stop]
        model.use_grad_buffer(self.sync_buffer[:size])

    def state(self) -> dict[str, Array]:
        """Arrays a checkpoint must keep besides parameters and optimizer state."""
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

    def local_gradient(self, x: Array, y: Array, global_count: int,
                       rows: Array | None = None, step: int = 0) -> None:
        """This rank's share of the gradient and loss sum, scaled by 1/global_count.

        rows: the global example indices of x (Dropout masks); step: the global step."""
        scale = 1.0 / global_count
        chunk = self.micro_batch_size or max(len(x), 1)
        if len(x) == 0:  # an empty shard contributes zeros (otherwise backward overwrites)
            self.model.flat_grads[...] = 0
        # a model that communicates inside forward/backward (BatchNorm) runs even on an
        # empty shard, so that every rank makes the same collective calls
        starts = range(0, max(len(x), 1 if self.model.collective else 0), chunk)
        loss_sum = 0.0
        for start in starts:
            context = StepContext(self.comm, self.seed, step,
                                  None if rows is None else rows[start:start + chunk])
            loss_sum += self.model.loss_sum_and_backward(
                x[start:start + chunk], y[start:start + chunk], self.loss, scale,
                accumulate=start > 0, timeline=self.timeline, context=context)
        grads = self.model.flat_grads
        finite = math.isfinite(loss_sum) and math.isfinite(float(np.dot(grads, grads)))
        self.stats[:] = (loss_sum * scale if finite else 0.0, not finite, 0)

    def step(self, x: Array, y: Array, global_count: int, stop: bool = False,
             rows: Array | None = None, step: int = 0) -> StepResult:
        """One synchronous step on this rank's rows of a global batch.

        The update is skipped on every rank when any rank saw a non-finite value.
        """
        self.local_gradient(x, y, global_count, rows, step)
        self.stats[2] = stop
        self.comm.Allreduce(self.sync_buffer)
        self.timeline.mark("comm")
        result = StepResult(float(self.stats[0]), bool(self.stats[1] > 0), bool(self.stats[2] > 0))
        if not result.nonfinite:
            self.optimizer.step()
        self.timeline.mark("update")
        return result


def check_micro_batches(model: Sequential, micro_batch_size: int | None) -> None:
    check(micro_batch_size is None or micro_batch_size > 0,
          f"micro batch size must be > 0, got {micro_batch_size}")
    check(micro_batch_size is None or not model.collective,
          "--micro-batch-size does not combine with BatchNorm: its statistics are those of "
          "the whole global batch, which micro-batches would split")


def evaluate(model: Sequential, loss: Loss, x: Array, y: Array,
             comm: SerialComm | None = None, chunk: int = 2048) -> dict[str, float]:
    """Loss and accuracy over the whole (x, y): each rank evaluates its own slice.

    Loss sums, correct counts and example counts are summed across ranks in float64,
    so the counts, and so the accuracy, are exactly those of the full set.
    """
    comm = comm or SerialComm()
    start, stop = shard_range(len(x), comm.rank, comm.size)
    totals = np.zeros(3)  # loss sum, correct, count
    for begin in range(start, stop, chunk):
        end = min(begin + chunk, stop)
        out = model.forward(x[begin:end])
        totals[0] += loss.forward(out, y[begin:end])[0]
        totals[1] += loss.correct(out, y[begin:end]) or 0
        totals[2] += end - begin
    comm.Allreduce(totals)
    count = max(totals[2], 1)
    result = {"loss": totals[0] / count, "count": int(totals[2])}
    if loss.has_accuracy:
        result.update(correct=int(totals[1]), accuracy=totals[1] / count)
    return result


def check_same_everywhere(comm: SerialComm, fingerprint: dict[str, Any]) -> None:
    """Raise the same CollectiveError on every rank if any field differs from rank 0's."""
    everyone = comm.allgather({key: repr(value) for key, value in fingerprint.items()})
    reference = everyone[0]
    problems = []
    for key in sorted(set().union(*everyone)):
        differing = [rank for rank, fields in enumerate(everyone)
                     if fields.get(key) != reference.get(key)]
        if differing:
            problems.append(f"'{key}' is {reference.get(key)} on rank 0 but "
                            f"{everyone[differing[0]].get(key)} on rank(s) "
                            f"{', '.join(map(str, differing))}")
    if problems:
        raise CollectiveError("configuration differs across ranks: " + "; ".join(problems))
