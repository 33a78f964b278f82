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

from distbp.dist.comm import SerialComm
from distbp.dist.evaluate import LOSS_BITS, evaluate_exact
from distbp.dist.reduction import Reduction, Slot, StepResult
from distbp.errors import check
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer

Array = np.ndarray
HEADROOM_BITS = 12  # growth of a gradient from one step to the next that needs no redo
SCALE_LIMITS = (-100, 100)  # exponents of 2 that stay exact in float32 arithmetic


class FixedPointSum(Reduction):
    """Fixed micro-shards and an integer (fixed-point) Allreduce.

    The int64 sync buffer is [gradients..., loss, non-finite, stop, overflow]. Each
    tensor's scale 2**s comes from the previous step's reduced gradient (identical on all
    ranks, so it costs no communication); the first step, and any step whose fixed-point
    values would overflow (a flag in the buffer), first probes the exact maximum with a
    small MAX Allreduce and then computes the step again.
    """

    accumulates = False  # each micro-shard's gradient is converted on its own
    evaluate = staticmethod(evaluate_exact)

    def __init__(self, shard_size: int = 128) -> None:
        check(isinstance(shard_size, int) and shard_size > 0,
              f"exact micro-shard size must be > 0, got {shard_size!r}")
        self.shard_size = shard_size
        self.scales: Array | None = None  # per-tensor exponents
        self.redone_steps = 0

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        """The int64 sync buffer and the per-tensor parts."""
        check(not model.collective, "--exact does not support BatchNorm: its statistics span "
                                    "the global batch, not one micro-shard")
        super().attach(model, optimizer, comm)
        size = model.num_parameters
        self.buffer = self.int_buffer(comm, size + len(Slot))
        self.ints, self.stats = self.buffer[:size], self.buffer[size:]
        self.ints_scratch = np.empty(size, dtype=np.int64)
        self.parts = [slice(offset, offset + int(np.prod(shape)))
                      for _, offset, shape in model.layout]

    def int_buffer(self, comm: SerialComm, length: int) -> Array:
        """The int64 sync buffer: [gradients..., statistics]."""
        return np.zeros(length, dtype=np.int64)

    def blas_threads(self, local_size: int) -> int:
        return 1  # a micro-shard's bits must not depend on how many ranks share the cores

    def fingerprint(self) -> tuple[bool, int | None]:
        return (True, self.shard_size)

    def state(self) -> dict[str, Array]:
        return {} if self.scales is None else {"exact_scales": self.scales}

    def load_state(self, arrays: dict[str, Array]) -> None:
        if "exact_scales" in arrays:
            self.scales = np.array(arrays["exact_scales"], dtype=np.int64)

    def begin(self, count: int, global_count: int) -> None:
        """Without scales this pass only probes each tensor's maximum (see reduce)."""
        self.probing, self.first = self.scales is None, True
        self.global_count = global_count
        self.shards_total = -(-global_count // self.shard_size)
        self.limit = 2.0 ** 63 / self.shards_total  # keeps the total in int64
        if not self.probing:
            self.factors = [self.model.dtype.type(2.0 ** s) for s in self.scales]
        if self.probing:
            self.maxima = np.zeros(len(self.parts))
        self.stats[...] = 0
        if count == 0:  # otherwise the first micro-shard overwrites every gradient
            self.ints[...] = 0

    def add(self, loss_sum: float) -> None:
        """Probing: the tensors' maxima; else this shard in fixed point, summed as integers."""
        grads = self.model.flat_grads
        if self.probing:
            for index, part in enumerate(self.parts):
                largest = float(np.max(np.abs(grads[part]), initial=0.0))
                if math.isfinite(largest):  # a NaN is flagged by the step itself
                    self.maxima[index] = max(self.maxima[index], largest)
            return
        for part, factor in zip(self.parts, self.factors, strict=True):
            values = grads[part]  # x 2**s below is exact: the range is checked before
            high = float(values.max(initial=0)) * float(factor)
            low = float(values.min(initial=0)) * float(factor)
            if not (math.isfinite(high) and math.isfinite(low) and math.isfinite(loss_sum)):
                self.stats[Slot.NONFINITE] = 1
            elif max(high, -low) >= self.limit:
                self.stats[Slot.OVERFLOW] = 1
        loss_fixed = loss_sum / self.global_count * 2.0 ** LOSS_BITS
        if not abs(loss_fixed) < 2.0 ** 62:  # NaN, infinite, or beyond int64
            self.stats[Slot.NONFINITE] = 1
        if self.stats[Slot.NONFINITE] or self.stats[Slot.OVERFLOW]:
            return
        self.stats[Slot.LOSS] += round(loss_fixed)
        target = self.ints if self.first else self.ints_scratch
        for part, factor in zip(self.parts, self.factors, strict=True):
            # scaled and truncated to int64 in one pass (exact: a power of two, in range)
            np.multiply(grads[part], factor, out=target[part], casting="unsafe")
        if self.first:
            self.first = False
        else:
            self.ints += self.ints_scratch

    def seal(self, stop: bool) -> None:
        self.stats[Slot.STOP] = stop

    def reduce(self) -> StepResult | None:
        """Probe the scales, or sum the integers; None when the step must be redone."""
        if self.probing:  # scales from the exact maximum over all micro-shards
            self.comm.Allreduce(self.maxima, op="max")
            self.scales = scales_for(self.maxima, 62 - math.ceil(math.log2(self.shards_total)))
            return None
        self.comm.Allreduce(self.buffer)
        nonfinite = bool(self.stats[Slot.NONFINITE])
        if self.stats[Slot.OVERFLOW] and not nonfinite:  # on some rank: everyone redoes
            self.scales, self.redone_steps = None, self.redone_steps + 1
            return None
        if not nonfinite:
            self.to_float()
        return StepResult(float(self.stats[Slot.LOSS]) / 2.0 ** LOSS_BITS, nonfinite,
                          bool(self.stats[Slot.STOP]))

    def to_float(self) -> None:
        """The summed integers back into model.flat_grads; next step's scales from them."""
        grads = self.model.flat_grads
        maxima = np.zeros(len(self.parts))
        for index, (part, s) in enumerate(zip(self.parts, self.scales, strict=True)):
            np.multiply(self.ints[part], 2.0 ** -int(s), out=grads[part], casting="unsafe")
            maxima[index] = max(float(grads[part].max(initial=0)),
                                -float(grads[part].min(initial=0)))
        self.scales = np.where(maxima > 0, scales_for(maxima, 62 - HEADROOM_BITS), self.scales)


def scales_for(maxima: Array, bits: int) -> Array:
    """Per-tensor exponents s with max * 2**s <= 2**bits (clamped; `bits` for zero tensors)."""
    with np.errstate(divide="ignore"):
        exponents = np.floor(bits - np.log2(np.where(maxima > 0, maxima, 1.0)))
    return np.clip(exponents, *SCALE_LIMITS).astype(np.int64)
