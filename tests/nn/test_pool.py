"""MaxPool2D and GlobalAvgPool2D (distbp.nn.pool): gradient checks and values."""

import numpy as np
import pytest
from conftest import layer_gradcheck

import distbp


@pytest.mark.parametrize("layer,shape", [
    (distbp.MaxPool2D(2), (3, 2, 6, 6)),
    (distbp.MaxPool2D(3), (2, 1, 6, 3)),
    (distbp.GlobalAvgPool2D(), (3, 2, 5, 5)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    assert layer_gradcheck(layer, shape) < 1e-7


def test_max_pool_takes_the_first_maximum_of_each_window():
    x = np.array([[[[1.0, 3.0, 0.0, 0.0], [3.0, 2.0, 0.0, -1.0]]]])  # (1, 1, 2, 4)
    out, cache = distbp.MaxPool2D(2).forward(x)
    np.testing.assert_array_equal(out, [[[[3.0, 0.0]]]])
    dx = distbp.MaxPool2D(2).backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[0, 1, 1, 0], [0, 0, 0, 0]]]])  # ties: the first


def test_max_pool_refuses_indivisible_sizes():
    with pytest.raises(ValueError, match="divisible by 2"):
        distbp.MaxPool2D(2).forward(np.zeros((1, 1, 5, 4)))


def test_global_average_is_the_mean_of_each_channel():
    x = np.arange(2 * 3 * 2 * 2, dtype=np.float64).reshape(2, 3, 2, 2)
    out, _ = distbp.GlobalAvgPool2D().forward(x)
    np.testing.assert_array_equal(out, x.mean(axis=(2, 3)))
