"""Activations (distbp.nn.activations): gradient checks and values."""

import numpy as np
import pytest

import distbp

ACTIVATIONS = [distbp.ReLU(), distbp.LeakyReLU(), distbp.LeakyReLU(0.2), distbp.Sigmoid(),
               distbp.Tanh()]


@pytest.mark.parametrize("layer", ACTIVATIONS, ids=repr)
def test_activation_gradcheck(layer, rng):
    x = rng.standard_normal((6, 5))
    assert distbp.gradcheck(layer, x) < 1e-7


def test_sigmoid_and_tanh_do_not_overflow():
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out, _ = distbp.Sigmoid().forward(x)
    np.testing.assert_allclose(out, [[0, 0, 0.5, 1, 1]], atol=1e-7)
    assert out.dtype == np.float32


def test_leaky_relu_values():
    out, _ = distbp.LeakyReLU(0.1).forward(np.array([[-2.0, 3.0]]))
    np.testing.assert_array_equal(out, [[-0.2, 3.0]])
