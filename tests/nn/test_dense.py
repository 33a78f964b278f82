"""Dense (distbp.nn.dense): gradient check, the affine map, and its checks."""

import numpy as np
import pytest
from conftest import mlp

import distbp


def test_dense_gradcheck(rng):
    assert distbp.gradcheck(distbp.Dense(5, 3), rng.standard_normal((6, 5))) < 1e-7


def test_dense_forward_is_affine(rng):
    model = mlp([3, 2])
    x = rng.standard_normal((5, 3))
    weight, bias = (p.data for _, p in model.named_parameters())
    np.testing.assert_allclose(model.forward(x), x @ weight + bias, rtol=1e-12)


@pytest.mark.parametrize("args", [(0, 3), (3, -1), (2.5, 3), (True, 2)])
def test_dense_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="Dense: (in|out)_features must be a positive integer"):
        distbp.Dense(*args)


def test_dense_rejects_wrong_input_width():
    model = mlp([4, 3, 2])
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(4, 3\)\) expects input of "
                                         r"shape \(batch, 4\), got \(2, 5\)"):
        model.forward(np.zeros((2, 5)))


def test_dense_input_gradient_is_laid_out_as_its_input():
    rng = np.random.default_rng(1)
    layer = distbp.Sequential([distbp.Dense(6, 3)], dtype=np.float64).layers[0]
    x = rng.standard_normal((4, 6))
    feature_major = np.asfortranarray(x)  # as a Flatten of images held (C, H, W, B) gives
    dout = rng.standard_normal((4, 3))
    dx = layer.backward(dout, layer.forward(x)[1]).copy()
    dx_major = layer.backward(dout, layer.forward(feature_major)[1])
    assert dx_major.flags.f_contiguous and not dx_major.flags.c_contiguous
    np.testing.assert_allclose(dx_major, dx, rtol=1e-12)
