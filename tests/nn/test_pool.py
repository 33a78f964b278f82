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


def relu_then_pool(x, dout, linked):
    """ReLU then MaxPool2D(2) forward and backward, as two layers or handed over."""
    relu, pool = distbp.ReLU(), distbp.MaxPool2D(2)
    if linked:
        relu.link(pool)
    out, pool_cache = pool.forward(*relu.forward(x)[:1])
    relu_out, relu_cache = relu.forward(x)
    dx = relu.backward(pool.backward(dout.copy(), pool_cache), relu_cache)
    return out.copy(), np.array(dx)


def test_relu_before_max_pool_is_applied_by_the_pool_with_the_same_results(rng):
    x = rng.standard_normal((3, 2, 4, 6)).astype(np.float32)
    x[0, 0, :2, :2] = -1.0  # a window of negatives
    x[0, 1, :2, :2] = 0.0  # ties at zero
    x[1, 0, :2, :2] = [[2.0, 2.0], [2.0, -1.0]]  # positive ties: the first wins
    x[2, 1, 2:, 4:] = [[-3.0, 0.0], [-1.0, -2.0]]  # a zero maximum
    dout = rng.standard_normal((3, 2, 2, 3)).astype(np.float32)
    out, dx = relu_then_pool(x, dout, linked=False)
    linked_out, linked_dx = relu_then_pool(x, dout, linked=True)
    np.testing.assert_array_equal(linked_out, out)
    np.testing.assert_array_equal(linked_dx, dx)
    assert out.min() == 0 and (dx != 0).sum() < dx.size / 4  # ReLU and the pool did act
    assert dx[1, 0, 0, 0] == dout[1, 0, 0, 0] and dx[1, 0, 0, 1] == 0


def test_a_model_hands_relu_to_the_max_pool_after_it_only():
    model = distbp.Sequential([distbp.Reshape(1, 4, 4), distbp.ReLU(), distbp.MaxPool2D(2),
                               distbp.ReLU(), distbp.Flatten(), distbp.Dense(4, 2)])
    assert model.layers[1].deferred and model.layers[2].relu
    assert not model.layers[3].deferred  # before a Flatten it runs itself
    x = np.random.default_rng(0).standard_normal((5, 16))
    expected = np.maximum(x.reshape(5, 2, 2, 2, 2).max(axis=(2, 4)), 0).reshape(5, 4)
    np.testing.assert_allclose(model.forward(x), expected @ model.layers[5].W
                               + model.layers[5].b, rtol=1e-5)
