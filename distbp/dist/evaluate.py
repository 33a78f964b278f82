"""Distributed evaluation whose counts, and so whose accuracy, are exactly those of the
full set: each rank evaluates its own rows, and the sums are reduced across ranks."""

from __future__ import annotations

import numpy as np

from distbp.data.sampler import shard_range
from distbp.dist.comm import SerialComm
from distbp.nn.losses import Loss
from distbp.nn.sequential import Sequential

Array = np.ndarray
LOSS_BITS = 40  # fixed-point fraction bits of losses (exact mode)


def evaluate(model: Sequential, loss: Loss, x: Array, y: Array,
             comm: SerialComm | None = None, chunk: int = 2048) -> dict[str, float]:
    """Loss and accuracy over the whole (x, y): each rank evaluates its contiguous slice
    in chunks; loss sums, correct and example counts are summed in float64."""
    comm = comm or SerialComm()
    start, stop = shard_range(len(x), comm.rank, comm.size)
    ranges = [(begin, min(begin + chunk, stop)) for begin in range(start, stop, chunk)]
    return reduce_totals(model, loss, x, y, comm, ranges, np.float64, 1.0)


def evaluate_exact(model: Sequential, loss: Loss, x: Array, y: Array,
                   comm: SerialComm | None = None, chunk: int = 1024) -> dict[str, float]:
    """evaluate() with chunks fixed independently of the rank count and fixed-point loss
    sums, so the result has the same bits at any rank count."""
    comm = comm or SerialComm()
    first, last = shard_range(-(-len(x) // chunk), comm.rank, comm.size)
    ranges = [(index * chunk, min((index + 1) * chunk, len(x))) for index in range(first, last)]
    return reduce_totals(model, loss, x, y, comm, ranges, np.int64, 2.0 ** (LOSS_BITS - 16))


def reduce_totals(model: Sequential, loss: Loss, x: Array, y: Array, comm: SerialComm,
                  ranges: list[tuple[int, int]], dtype: type, loss_unit: float) -> dict:
    """Sum (loss sum / loss_unit, correct, count) over this rank's row ranges, then over
    the ranks; in int64 the loss sums are rounded to fixed point first."""
    totals = np.zeros(3, dtype=dtype)  # loss sum, correct, count
    for begin, end in ranges:
        out = model.forward(x[begin:end])
        loss_sum = loss.forward(out, y[begin:end])[0] * loss_unit
        totals[0] += round(loss_sum) if dtype == np.int64 else loss_sum
        totals[1] += loss.correct(out, y[begin:end]) or 0
        totals[2] += end - begin
    comm.Allreduce(totals)
    count = max(int(totals[2]), 1)
    result = {"loss": float(totals[0]) / loss_unit / count, "count": int(totals[2])}
    if loss.has_accuracy:
        result.update(correct=int(totals[1]), accuracy=int(totals[1]) / count)
    return result
