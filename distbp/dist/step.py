"""The synchronous data-parallel step: local gradient -> reduction -> identical update.

Each rank computes the gradient of (sum of its examples' losses) / (global batch size),
in micro-batches or micro-shards if asked; the reduction sums those over the ranks, so
every rank gets exactly the single-process mean gradient of the whole batch, for uneven
and empty shards too; then the optimizer updates the part of the parameters this rank
owns (all of them, except under the shared-memory reduction).
"""

from __future__ import annotations

import numpy as np

from distbp.dist.comm import SerialComm
from distbp.dist.reduction import AllreduceSum, Reduction, StepResult
from distbp.dist.timeline import OFF
from distbp.errors import check
from distbp.nn.layer import StepContext
from distbp.nn.losses import Loss
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer

Array = np.ndarray


class DataParallel:
    """forward -> backward (per chunk) -> reduction -> update, identically on every rank.

    reduction: AllreduceSum (default), SharedMemorySum (ranks of one node) or
    FixedPointSum (exact mode); see distbp.dist.choose. seed: of the Dropout masks, a
    function of (seed, step, example index). clip_grad_norm: clip the reduced gradient to
    this global norm (every rank clips by the global batch's norm).
    """

    def __init__(self, model: Sequential, optimizer: Optimizer, loss: Loss,
                 comm: SerialComm | None = None, micro_batch_size: int | None = None,
                 reduction: Reduction | None = None, seed: int = 0,
                 clip_grad_norm: float | None = None) -> None:
        check(micro_batch_size is None or micro_batch_size > 0,
              f"micro batch size must be > 0, got {micro_batch_size}")
        check(micro_batch_size is None or not model.collective,
              "--micro-batch-size does not combine with BatchNorm: its statistics are those "
              "of the whole global batch, which micro-batches would split")
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.comm = comm or SerialComm()
        check(clip_grad_norm is None or clip_grad_norm > 0,
              f"--clip-grad-norm must be > 0, got {clip_grad_norm}")
        self.micro_batch_size, self.seed = micro_batch_size, seed
        self.clip_grad_norm = clip_grad_norm
        self.timeline = OFF  # set a Timeline to see where the time goes
        self.reduction = reduction or AllreduceSum()
        self.reduction.attach(model, optimizer, self.comm)

    def local_gradient(self, x: Array, y: Array, global_count: int, rows: Array | None = None,
                       step: int = 0, stop: bool = False) -> None:
        """This rank's rows x (n, ...), y (n, ...) of a global batch of global_count: the
        gradient of their loss sum / global_count, handed to the reduction chunk by chunk.

        rows: the global example indices of x (Dropout masks); step: the global step."""
        reduction, model = self.reduction, self.model
        chunk = reduction.shard_size or self.micro_batch_size or max(len(x), 1)
        reduction.begin(len(x), global_count)
        # a model that communicates inside forward/backward (BatchNorm) runs even on an
        # empty shard, so that every rank makes the same collective calls
        for start in range(0, max(len(x), 1 if model.collective else 0), chunk):
            part = slice(start, start + chunk)
            context = StepContext(self.comm, self.seed, step, None if rows is None else rows[part])
            reduction.add(model.loss_sum_and_backward(
                x[part], y[part], self.loss, 1.0 / global_count,
                accumulate=start > 0 and reduction.accumulates, context=context,
                mark=self.timeline.mark))
        reduction.seal(stop)

    def step(self, x: Array, y: Array, global_count: int, stop: bool = False,
             rows: Array | None = None, step: int = 0) -> StepResult:
        """One synchronous step on this rank's rows of a global batch.

        The update is skipped on every rank when any rank saw a non-finite value.
        """
        while True:
            self.local_gradient(x, y, global_count, rows, step, stop)
            result = self.reduction.reduce()
            self.timeline.mark("comm")
            if result is not None:  # None: the reduction needs the step computed again
                break
        if not result.nonfinite:
            if self.clip_grad_norm:  # after the reduction: the global batch's norm
                result.grad_norm = self.reduction.clip(self.clip_grad_norm)
            self.reduction.update()
        self.timeline.mark("update")
        self.reduction.finish()
        self.timeline.mark("comm")
        return result

    def broadcast_parameters(self, root: int = 0) -> None:
        """Every rank starts from root's parameters."""
        self.reduction.broadcast_parameters(root)

    def broadcast_state(self) -> None:
        """Every rank gets rank 0's parameters, model and optimizer state (after a restore)."""
        self.reduction.broadcast_state()

    def state(self) -> dict[str, Array]:
        """Arrays a checkpoint must keep besides parameters and optimizer state. Collective
        (every rank calls it); rank 0's arrays are the ones to save."""
        return self.reduction.state()

    def load_state(self, arrays: dict[str, Array]) -> None:
        """Restore what state() returned."""
        self.reduction.load_state(arrays)
