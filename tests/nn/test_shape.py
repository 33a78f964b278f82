"""Flatten and Reshape (distbp.nn.shape): views with gradients of the input shape."""

import numpy as np
import pytest
from conftest import layer_gradcheck

import distbp


@pytest.mark.parametrize("layer,shape", [
    (distbp.Flatten(), (3, 2, 4, 4)),
    (distbp.Reshape(2, 3), (4, 6)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    assert layer_gradcheck(layer, shape) < 1e-7


def test_reshape_round_trip_and_bad_sizes():
    x = np.arange(12.0).reshape(2, 6)
    out, cache = distbp.Reshape(1, 2, 3).forward(x)
    assert out.shape == (2, 1, 2, 3) and np.shares_memory(out, x)
    assert distbp.Reshape(1, 2, 3).backward(out, cache).shape == (2, 6)
    with pytest.raises(ValueError, match="cannot reshape"):
        distbp.Reshape(5).forward(x)
    with pytest.raises(ValueError, match="Reshape: dimension 0 must be a positive integer"):
        distbp.Reshape(0, 2)
