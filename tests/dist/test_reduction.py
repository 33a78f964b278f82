"""The reduction interface (distbp.dist.reduction): the statistics tail has named slots,
the step calls every reduction in the same order, and a new reduction is one class."""

import numpy as np
import pytest
from conftest import mlp

import distbp
from distbp.dist.choose import REDUCTIONS, make_reduction
from distbp.dist.comm import SerialComm
from distbp.dist.reduction import FLOAT_SLOTS, AllreduceSum, Slot, result_of
from distbp.dist.step import DataParallel

LOSS = distbp.SoftmaxCrossEntropy()


class Recording(AllreduceSum):
    """An Allreduce that records the step's calls (a new reduction: one class)."""

    def __init__(self):
        self.calls = []

    def begin(self, count, global_count):
        self.calls.append(("begin", count, global_count))
        super().begin(count, global_count)

    def add(self, loss_sum):
        self.calls.append("add")
        super().add(loss_sum)

    def seal(self, stop):
        self.calls.append(("seal", stop))
        super().seal(stop)

    def reduce(self):
        self.calls.append("reduce")
        return super().reduce()

    def update(self):
        self.calls.append("update")
        super().update()

    def finish(self):
        self.calls.append("finish")


def test_the_statistics_tail_has_named_slots():
    assert [slot.name for slot in Slot] == ["LOSS", "NONFINITE", "STOP", "OVERFLOW"]
    assert FLOAT_SLOTS == 3
    result = result_of(np.array([0.5, 0.0, 1.0]))
    assert (result.loss, result.nonfinite, result.stop) == (0.5, False, True)


def test_the_step_calls_a_reduction_in_one_order(monkeypatch, rng):
    monkeypatch.setitem(REDUCTIONS, "recording", lambda shard_size: Recording())
    reduction = make_reduction("recording", SerialComm())
    model = mlp([4, 5, 3])
    trainer = DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, micro_batch_size=4,
                           reduction=reduction)
    x, y = rng.standard_normal((10, 4)), rng.integers(0, 3, 10)
    result = trainer.step(x, y, 10, stop=True)
    assert reduction.calls == [("begin", 10, 10), "add", "add", "add", ("seal", True),
                               "reduce", "update", "finish"]
    assert result.stop and not result.nonfinite
    assert result.loss == pytest.approx(mlp([4, 5, 3]).loss_and_backward(x, y, LOSS))


def test_a_nonfinite_step_skips_the_update_everywhere(rng):
    model = mlp([4, 3])
    trainer = DataParallel(model, distbp.SGD(model, lr=0.1), LOSS, reduction=Recording())
    before = model.flat_params.copy()
    x = rng.standard_normal((5, 4))
    x[2, 1] = np.nan
    result = trainer.step(x, rng.integers(0, 3, 5), 5)
    assert result.nonfinite and result.loss == 0.0
    assert "update" not in trainer.reduction.calls and "finish" in trainer.reduction.calls
    np.testing.assert_array_equal(model.flat_params, before)
