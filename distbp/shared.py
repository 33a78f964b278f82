"""Within one node: every rank's gradient in MPI-3 shared memory, one shared copy of the
parameters and of the optimizer state; each rank sums and updates its own part in place.

This replaces an Allreduce (which copies every gradient through shared memory several
times) and n identical optimizer updates with one read of the n gradients and one
update, split n ways. Multi-node jobs use the plain Allreduce (DataParallel).
"""

from __future__ import annotations

import numpy as np

from distbp.comm import SerialComm
from distbp.data import shard_range
from distbp.errors import check
from distbp.losses import Loss
from distbp.model import Sequential
from distbp.optim import Optimizer
from distbp.parallel import DataParallel, StepResult, check_micro_batches
from distbp.timeline import OFF

Array = np.ndarray
ALIGN = 16  # elements: parts start on 64-byte boundaries, no false sharing


class SharedMemoryDataParallel(DataParallel):
    """forward -> backward -> node barrier -> reduce and update my part -> node barrier.

    After a step, model.flat_grads holds this rank's own (scaled) gradient; the summed
    gradient exists only part by part, where each rank used it.
    """

    def __init__(self, model: Sequential, optimizer: Optimizer, loss: Loss,
                 comm: SerialComm, micro_batch_size: int | None = None) -> None:
        check(comm.nodes == 1, "shared-memory reduction needs all ranks on one node")
        check_micro_batches(model, micro_batch_size)
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.seed = 0
        self.comm, self.micro_batch_size = comm, micro_batch_size
        self.timeline = OFF
        size, root = model.num_parameters, comm.local_rank == 0
        self.segments = comm.node_shared(size + 3, model.dtype)  # [grads..., stats] per rank
        self.sync_buffer = self.segments[comm.local_rank]
        self.stats = self.sync_buffer[size:]
        model.use_grad_buffer(self.sync_buffer[:size], copy=False)
        model.use_param_buffer(comm.node_shared(size, model.dtype, single=True)[0], copy=root)
        for name in list(optimizer.state()):
            optimizer.use_state_buffer(name, comm.node_shared(size, model.dtype, single=True)[0],
                                       copy=root)
        start, stop = shard_range(-(-size // ALIGN), comm.local_rank, comm.local_size)
        self.part = slice(start * ALIGN, min(stop * ALIGN, size))
        self.reduced = np.empty(self.part.stop - self.part.start, dtype=model.dtype)
        comm.node_barrier()  # every rank sees rank 0's parameters

    def broadcast_parameters(self, root: int = 0) -> None:
        self.comm.node_barrier()  # one shared copy: nothing to send

    def broadcast_state(self) -> None:
        self.comm.Bcast(self.model.flat_state)  # private to each rank; the rest is shared
        self.comm.node_barrier()

    def step(self, x: Array, y: Array, global_count: int, stop: bool = False,
             rows: Array | None = None, step: int = 0) -> StepResult:
        self.local_gradient(x, y, global_count, rows, step)
        self.stats[2] = stop
        self.comm.node_barrier()  # every rank's gradient and stats are written
        self.timeline.mark("comm")
        stats = self.segments[0][-3:].astype(np.float64)
        for segment in self.segments[1:]:  # rank order: the same sums on every rank
            stats += segment[-3:]
        result = StepResult(float(stats[0]), bool(stats[1] > 0), bool(stats[2] > 0))
        if not result.nonfinite:
            part, reduced = self.part, self.reduced
            np.copyto(reduced, self.segments[0][part])
            for segment in self.segments[1:]:
                reduced += segment[part]
            self.optimizer.step(part, reduced)
        self.timeline.mark("update")
        self.comm.node_barrier()  # parameters updated, gradients read: next step may start
        self.timeline.mark("comm")
        return result
