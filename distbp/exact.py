"""Exact mode: training whose every bit is the same at any rank count.

Each global batch is cut into micro-shards of a fixed size (the last may be shorter);
ranks take whole micro-shards, so every micro-shard's gradient is computed with the same
shapes, and so the same bits, wherever it runs (one BLAS thread per rank). Gradients are
converted to 64-bit fixed point per tensor and summed as integers: integer addition is
associative, so neither the order, nor the rank count, nor the MPI algorithm can change
the sum. It is converted back once, identically on every rank.
"""

from __future__ import annotations

import math

import numpy as np

from distbp.comm import SerialComm
from distbp.data import shard_range
from distbp.errors import check
from distbp.layers import StepContext
from distbp.losses import Loss
from distbp.model import Sequential
from distbp.optim import Optimizer
from distbp.parallel import DataParallel, StepResult
from distbp.timeline import OFF

Array = np.ndarray
HEADROOM_BITS = 12  # growth of a gradient from one step to the next that needs no redo
LOSS_BITS = 40  # fixed-point fraction bits of losses
SCALE_LIMITS = (-100, 100)  # exponents of 2 that stay exact in float32 arithmetic


class ExactDataParallel(DataParallel):
    """DataParallel with a fixed micro-shard size and an integer (fixed-point) Allreduce.

    The int64 sync buffer is [gradients..., loss, non-finite, stop, overflow]. Each
    tensor's scale 2**s comes from the previous step's reduced gradient (identical on all
    ranks, so it costs no communication); the first step, and any step whose fixed-point
    values would overflow (a flag in the buffer), first probes the exact maximum with a
    small MAX Allreduce and then computes the step again.
    """

    def __init__(self, model: Sequential, optimizer: Optimizer, loss: Loss,
                 comm: SerialComm | None = None, shard_size: int = 128) -> None:
        check(isinstance(shard_size, int) and shard_size > 0,
              f"exact micro-shard size must be > 0, got {shard_size!r}")
        check(not model.collective, "--exact does not support BatchNorm: its statistics span "
                                    "the global batch, not one micro-shard")
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.seed, self.rows, self.step_number = 0, None, 0
        self.comm = comm or SerialComm()
        self.shard_size = shard_size
        size = model.num_parameters
        self.sync_buffer = np.zeros(size + 4, dtype=np.int64)
        self.ints, self.stats = self.sync_buffer[:size], self.sync_buffer[size:]
        self.scaled = np.empty(size, dtype=model.dtype)  # one shard's gradient x 2**s
        self.ints_scratch = np.empty(size, dtype=np.int64)
        self.parts = [slice(offset, offset + int(np.prod(shape)))
                      for _, offset, shape in model.layout]
        self.scales: Array | None = None  # per-tensor exponents
        self.redone_steps = 0
        self.timeline = OFF

    def state(self) -> dict[str, Array]:
        return {} if self.scales is None else {"exact_scales": self.scales}

    def load_state(self, arrays: dict[str, Array]) -> None:
        if "exact_scales" in arrays:
            self.scales = np.array(arrays["exact_scales"], dtype=np.int64)

    def shards(self, x: Array, y: Array, global_count: int):
        """Gradient (in model.flat_grads) and loss sum of each local micro-shard."""
        for start in range(0, len(x), self.shard_size):
            rows = slice(start, start + self.shard_size)
            context = StepContext(self.comm, self.seed, self.step_number,
                                  None if self.rows is None else self.rows[rows])
            yield self.model.loss_sum_and_backward(x[rows], y[rows], self.loss,
                                                   1.0 / global_count, timeline=self.timeline,
                                                   context=context)

    def probe_scales(self, x: Array, y: Array, global_count: int) -> Array:
        """Scales from the exact maximum over all micro-shards of each tensor."""
        maxima = np.zeros(len(self.parts))
        for _ in self.shards(x, y, global_count):
            grads = self.model.flat_grads
            for index, part in enumerate(self.parts):
                largest = float(np.max(np.abs(grads[part]), initial=0.0))
                if math.isfinite(largest):  # a NaN is flagged by the step itself
                    maxima[index] = max(maxima[index], largest)
        self.comm.Allreduce(maxima, op="max")
        shards_total = -(-global_count // self.shard_size)
        return scales_for(maxima, 62 - math.ceil(math.log2(shards_total)))

    def local_sum(self, x: Array, y: Array, global_count: int) -> None:
        """This rank's micro-shards in fixed point, summed as integers into sync_buffer."""
        if len(x) == 0:  # otherwise the first micro-shard overwrites every gradient
            self.ints[...] = 0
        self.stats[...] = 0
        limit = 2.0 ** 63 / -(-global_count // self.shard_size)  # keeps the total in int64
        factors = [self.model.dtype.type(2.0 ** s) for s in self.scales]
        for first, loss_sum in enumerate(self.shards(x, y, global_count)):
            grads = self.model.flat_grads
            for part, factor in zip(self.parts, factors, strict=True):
                scaled = np.multiply(grads[part], factor, out=self.scaled[part])  # exact
                high, low = float(scaled.max(initial=0)), float(scaled.min(initial=0))
                if not (math.isfinite(high) and math.isfinite(low)
                        and math.isfinite(loss_sum)):
                    self.stats[1] = 1
                elif max(high, -low) >= limit:
                    self.stats[3] = 1
            loss_fixed = loss_sum / global_count * 2.0 ** LOSS_BITS
            if not abs(loss_fixed) < 2.0 ** 62:  # NaN, infinite, or beyond int64
                self.stats[1] = 1
            if self.stats[1] or self.stats[3]:
                continue
            self.stats[0] += round(loss_fixed)
            if first == 0:
                np.copyto(self.ints, self.scaled, casting="unsafe")  # truncates: exact
            else:
                np.copyto(self.ints_scratch, self.scaled, casting="unsafe")
                self.ints += self.ints_scratch

    def step(self, x: Array, y: Array, global_count: int, stop: bool = False,
             rows: Array | None = None, step: int = 0) -> StepResult:
        self.rows, self.step_number = rows, step
        while True:
            if self.scales is None:
                self.scales = self.probe_scales(x, y, global_count)
            self.local_sum(x, y, global_count)
            self.stats[2] = stop
            self.timeline.mark("update")  # the fixed-point conversion
            self.comm.Allreduce(self.sync_buffer)
            self.timeline.mark("comm")
            if self.stats[3] and not self.stats[1]:  # overflow on some rank: everyone redoes
                self.scales, self.redone_steps = None, self.redone_steps + 1
                continue
            break
        nonfinite = bool(self.stats[1])
        if not nonfinite:
            grads = self.model.flat_grads
            maxima = np.zeros(len(self.parts))
            for index, (part, s) in enumerate(zip(self.parts, self.scales, strict=True)):
                np.multiply(self.ints[part], 2.0 ** -int(s), out=grads[part], casting="unsafe")
                maxima[index] = max(float(grads[part].max(initial=0)),
                                    -float(grads[part].min(initial=0)))
            self.scales = np.where(maxima > 0, scales_for(maxima, 62 - HEADROOM_BITS),
                                   self.scales)
            self.optimizer.step()
        self.timeline.mark("update")
        loss = float(self.stats[0]) / 2.0 ** LOSS_BITS
        return StepResult(loss, nonfinite, bool(self.stats[2]))


def scales_for(maxima: Array, bits: int) -> Array:
    """Per-tensor exponents s with max * 2**s <= 2**bits (clamped; 0 for zero tensors)."""
    with np.errstate(divide="ignore"):
        exponents = np.floor(bits - np.log2(np.where(maxima > 0, maxima, 1.0)))
    return np.clip(exponents, *SCALE_LIMITS).astype(np.int64)


def evaluate_exact(model: Sequential, loss: Loss, x: Array, y: Array,
                   comm: SerialComm | None = None, chunk: int = 1024) -> dict[str, float]:
    """evaluate() with chunks fixed independently of the rank count and fixed-point loss
    sums, so the result has the same bits at any rank count."""
    comm = comm or SerialComm()
    chunks = -(-len(x) // chunk)
    first, last = shard_range(chunks, comm.rank, comm.size)
    totals = np.zeros(3, dtype=np.int64)  # loss sum (fixed point), correct, count
    for index in range(first, last):
        rows = slice(index * chunk, min((index + 1) * chunk, len(x)))
        out = model.forward(x[rows])
        totals[0] += round(loss.forward(out, y[rows])[0] * 2.0 ** (LOSS_BITS - 16))
        totals[1] += loss.correct(out, y[rows]) or 0
        totals[2] += rows.stop - rows.start
    comm.Allreduce(totals)
    count = max(int(totals[2]), 1)
    result = {"loss": float(totals[0]) / 2.0 ** (LOSS_BITS - 16) / count, "count": int(totals[2])}
    if loss.has_accuracy:
        result.update(correct=int(totals[1]), accuracy=int(totals[1]) / count)
    return result
