"""The layer interface (distbp.nn.layer): the step context and the argument checks."""

import numpy as np
import pytest

import distbp
from distbp.nn.layer import StepContext, check_positive_ints


class Recorder:
    def __init__(self):
        self.buffers = []

    def Allreduce(self, buffer):  # noqa: N802 - the MPI verb
        self.buffers.append(buffer.copy())
        buffer *= 2


def test_step_context_rows_and_allreduce():
    assert list(StepContext().rows_for(3)) == [0, 1, 2]  # serial: positions are indices
    assert list(StepContext(rows=np.array([7, 9, 4])).rows_for(2)) == [7, 9]
    values = np.ones(3)
    StepContext().allreduce(values)  # one process: nothing to sum with
    np.testing.assert_array_equal(values, 1)
    recorder = Recorder()
    StepContext(recorder).allreduce(values)
    np.testing.assert_array_equal(values, 2)
    assert len(recorder.buffers) == 1


def test_positive_int_checks_and_the_abstract_kernel():
    check_positive_ints("X", a=1, b=np.int64(2))
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match=f"X: a must be a positive integer, got {bad!r}"):
            check_positive_ints("X", a=bad)
    with pytest.raises(NotImplementedError):
        distbp.Layer().forward(np.zeros((1, 1)))
