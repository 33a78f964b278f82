"""Exact mode within one node: the fixed-point integers summed in shared memory.

FixedPointSum sums every rank's int64 gradient with an Allreduce, twice the bytes of a
float32 one, and every rank then converts and applies all of it. Here each rank writes
its integers to node-shared memory; after a barrier each rank sums its 1/n part of every
rank's integers (integer addition: the very bits the Allreduce gives), converts that part
back and updates that part of the one shared copy of the parameters and optimizer state
(as SharedMemorySum does with floats). The conversion and the update are element-wise,
so every bit is FixedPointSum's, at any rank count.
"""

from __future__ import annotations

import math

import numpy as np

from distbp.dist.comm import SerialComm
from distbp.dist.evaluate import LOSS_BITS
from distbp.dist.fixedpoint import HEADROOM_BITS, FixedPointSum, scales_for
from distbp.dist.reduction import Slot, StepResult
from distbp.dist.shared import SharedModel, share_model, sum_segments
from distbp.errors import check
from distbp.nn.sequential import Sequential
from distbp.optim.clip import clip_by_norm, squared_norm
from distbp.optim.optimizers import Optimizer

Array = np.ndarray


class ExactSharedSum(SharedModel, FixedPointSum):
    """node barrier -> sum my part of every rank's integers, convert it, update my part
    of the shared parameters -> node barrier. One node only."""

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        """Node-shared int64 buffers (one per rank), one shared copy of the parameters,
        the optimizer state and the summed float gradient."""
        check(comm.nodes == 1, f"exact mode in shared memory needs all ranks on one node, "
                               f"this job has {comm.nodes} nodes")
        super().attach(model, optimizer, comm)
        self.part = share_model(model, optimizer, comm)
        self.summed = np.empty(self.part.stop - self.part.start, dtype=np.int64)
        self.whole = comm.node_shared(model.num_parameters, model.dtype, single=True)[0]
        self.reduced = self.whole[self.part]  # my part of the summed gradient, in floats
        comm.node_barrier()  # every rank sees rank 0's parameters

    def int_buffer(self, comm: SerialComm, length: int) -> Array:
        """This rank's node-shared int64 buffer (the others' are self.segments)."""
        self.segments = comm.node_shared(length, np.int64)
        return self.segments[comm.local_rank]

    def reduce(self) -> StepResult | None:
        """Probe the scales (FixedPointSum's), or sum the statistics and my part of the
        integers; None when the step must be redone."""
        if self.probing:
            return super().reduce()
        self.comm.node_barrier()  # every rank's integers are written
        size = self.model.num_parameters
        stats = sum_segments(self.segments, slice(size, None), np.empty(len(Slot), np.int64))
        nonfinite = bool(stats[Slot.NONFINITE])
        if stats[Slot.OVERFLOW] and not nonfinite:  # on some rank: everyone redoes
            self.scales, self.redone_steps = None, self.redone_steps + 1
            self.comm.node_barrier()  # all have read the flags before any rank writes again
            return None
        if not nonfinite:
            self.to_float()
        return StepResult(float(stats[Slot.LOSS]) / 2.0 ** LOSS_BITS, nonfinite,
                          bool(stats[Slot.STOP]))

    def to_float(self) -> None:
        """My part of the summed integers into floats (self.reduced); the next step's
        scales from each tensor's maximum over every rank's part (a small MAX Allreduce)."""
        part, summed = self.part, sum_segments(self.segments, self.part, self.summed)
        maxima = np.zeros(len(self.parts))
        for index, (tensor, s) in enumerate(zip(self.parts, self.scales, strict=True)):
            mine = slice(max(tensor.start, part.start) - part.start,
                         min(tensor.stop, part.stop) - part.start)
            if mine.start < mine.stop:
                values = self.reduced[mine]
                np.multiply(summed[mine], 2.0 ** -int(s), out=values, casting="unsafe")
                maxima[index] = max(float(values.max()), -float(values.min()))
        self.comm.Allreduce(maxima, op="max")
        self.scales = np.where(maxima > 0, scales_for(maxima, 62 - HEADROOM_BITS), self.scales)

    def clip(self, max_norm: float) -> float:
        """The norm of the whole summed gradient, computed as one process computes it (the
        same bits) from the shared copy every part is in; each rank clips its part."""
        self.comm.node_barrier()  # every part is converted
        norm = math.sqrt(squared_norm(self.whole))
        self.comm.node_barrier()  # every rank has read it before any part is scaled
        clip_by_norm(self.reduced, norm, max_norm)
        return norm
