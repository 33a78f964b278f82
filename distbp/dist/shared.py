"""Within one node: every rank's gradient in MPI-3 shared memory, one shared copy of the
parameters and of the optimizer state; each rank sums and updates its own part in place.

This replaces an Allreduce (which copies every gradient through shared memory several
times) and n identical optimizer updates with one read of the n gradients and one
update, split n ways. Across nodes, HierarchicalSum (distbp.dist.hierarchical) adds one
Allreduce between nodes per part.
"""

from __future__ import annotations

import math

import numpy as np

from distbp.data.sampler import shard_range
from distbp.dist.comm import SerialComm
from distbp.dist.reduction import FLOAT_SLOTS, FloatSum, StepResult, result_of
from distbp.errors import check
from distbp.nn.sequential import Sequential
from distbp.optim.clip import clip_by_norm, squared_norm
from distbp.optim.optimizers import Optimizer

ALIGN = 16  # elements: parts start on 64-byte boundaries, no false sharing


def share_model(model: Sequential, optimizer: Optimizer, comm: SerialComm) -> slice:
    """One node-shared copy of the parameters and of the optimizer state (local rank 0's);
    returns this rank's part of them (1/n, aligned), which it alone updates."""
    size, root = model.num_parameters, comm.local_rank == 0
    model.use_param_buffer(comm.node_shared(size, model.dtype, single=True)[0], copy=root)
    for name in list(optimizer.state()):
        optimizer.use_state_buffer(name, comm.node_shared(size, model.dtype, single=True)[0],
                                   copy=root)
    start, stop = shard_range(-(-size // ALIGN), comm.local_rank, comm.local_size)
    return slice(min(start * ALIGN, size), min(stop * ALIGN, size))  # maybe empty


def sum_segments(segments: list[np.ndarray], part: slice, out: np.ndarray) -> np.ndarray:
    """out = the sum of every rank's segment[part], in rank order and in out's precision
    (the same bits on every rank); returns out."""
    first, *rest = segments
    if rest:
        np.add(first[part], rest[0][part], out=out, dtype=out.dtype)
        rest = rest[1:]
    else:
        np.copyto(out, first[part])
    for segment in rest:
        out += segment[part]
    return out


class SharedModel:
    """What the shared-memory reductions share: with one copy of the parameters and the
    optimizer state, each rank updates its part from its part of the summed gradient
    (self.reduced), between two node barriers; there is nothing to broadcast."""

    comm: SerialComm
    model: Sequential
    optimizer: Optimizer
    part: slice
    reduced: np.ndarray

    def update(self) -> None:
        """Update my part from the sum of every rank's part (made in reduce)."""
        self.optimizer.step(self.part, self.reduced)

    def finish(self) -> None:
        self.comm.node_barrier()  # parameters updated, gradients read: next step may start

    def broadcast_parameters(self, root: int = 0) -> None:
        self.comm.node_barrier()  # one shared copy: nothing to send

    def broadcast_state(self) -> None:
        self.comm.Bcast(self.model.flat_state)  # private to each rank; the rest is shared
        self.comm.node_barrier()


class SharedMemorySum(SharedModel, FloatSum):
    """node barrier -> sum and update my part of the shared parameters -> node barrier.

    After a step, model.flat_grads holds this rank's own (scaled) gradient; the summed
    gradient exists only part by part, where each rank used it.
    """

    across_nodes = False  # HierarchicalSum: True

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        """Shared gradients per rank, one shared copy of parameters and optimizer state."""
        check(self.across_nodes or comm.nodes == 1,
              f"--reduce shared needs all ranks on one node, this job has {comm.nodes} nodes "
              "(--reduce hierarchical sums in shared memory within each node)")
        super().attach(model, optimizer, comm)
        size = model.num_parameters
        self.segments = comm.node_shared(size + FLOAT_SLOTS, model.dtype)  # one per rank
        self.use_buffer(self.segments[comm.local_rank], copy=False)
        self.part = share_model(model, optimizer, comm)
        length = self.part.stop - self.part.start
        self.wire = np.empty(length + FLOAT_SLOTS, dtype=model.dtype)  # part, then stats
        self.reduced = self.wire[:length]
        self.counts_norm = True  # this rank's part counts in the global norm
        comm.node_barrier()  # every rank sees rank 0's parameters

    def reduce(self) -> StepResult:
        """Wait for every rank's gradient; the statistics and my part of the gradient
        summed in rank order (the same sums on every rank)."""
        return result_of(self.node_sum())

    def node_sum(self) -> np.ndarray:
        """My part of the node's summed gradient into self.reduced; the node's summed
        statistics (float64) returned."""
        self.comm.node_barrier()  # every rank's gradient and stats are written
        size = self.model.num_parameters
        sum_segments(self.segments, self.part, self.reduced)
        return sum_segments(self.segments, slice(size, None),
                            np.empty(FLOAT_SLOTS, dtype=np.float64))

    def clip(self, max_norm: float) -> float:
        """The global norm from every rank's part (one small Allreduce, summed in rank
        order: the same on every rank); each rank scales its part."""
        squares = np.zeros(self.comm.size)
        squares[self.comm.rank] = squared_norm(self.reduced) if self.counts_norm else 0.0
        self.comm.Allreduce(squares)
        norm = math.sqrt(float(np.sum(squares)))
        clip_by_norm(self.reduced, norm, max_norm)
        return norm
