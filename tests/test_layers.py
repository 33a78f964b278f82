"""Gradient checks (float64, central differences) for every layer and loss."""

import numpy as np
import pytest
from conftest import mlp

import distbp

LAYERS = [
    distbp.Dense(5, 3), distbp.ReLU(), distbp.LeakyReLU(), distbp.LeakyReLU(0.2),
    distbp.Sigmoid(), distbp.Tanh(),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_layer_gradcheck(layer, rng):
    x = rng.standard_normal((6, 5))
    assert distbp.gradcheck(layer, x) < 1e-7


@pytest.mark.parametrize("loss,target", [
    (distbp.SoftmaxCrossEntropy(), lambda rng: rng.integers(0, 4, 6)),
    (distbp.MSE(), lambda rng: rng.standard_normal((6, 4))),
], ids=["softmax_xent", "mse"])
def test_loss_gradcheck(loss, target, rng):
    assert distbp.gradcheck(loss, rng.standard_normal((6, 4)) * 3, target(rng)) < 1e-7


def test_whole_model_mixing_all_activations(rng):
    model = distbp.Sequential([
        distbp.Dense(4, 8), distbp.Tanh(), distbp.Dense(8, 6), distbp.ReLU(),
        distbp.Dense(6, 5), distbp.LeakyReLU(0.1), distbp.Dense(5, 4), distbp.Sigmoid(),
        distbp.Dense(4, 3)], seed=3, dtype=np.float64)
    x = rng.standard_normal((7, 4))
    assert distbp.gradcheck(model, x) < 1e-7
    assert distbp.gradcheck(model, x, rng.integers(0, 3, 7), distbp.SoftmaxCrossEntropy()) < 1e-7
    assert distbp.gradcheck(model, x, rng.standard_normal((7, 3)), distbp.MSE()) < 1e-7


def test_gradcheck_catches_a_wrong_gradient(rng):
    class BrokenTanh(distbp.Tanh):
        def backward(self, dout, cache, accumulate=False, need_dx=True, ws=None):
            return dout * (1 - cache)  # wrong derivative

    assert distbp.gradcheck(BrokenTanh(), rng.standard_normal((4, 3))) > 1e-2
    model = mlp([3, 4, 2])
    model.layers[1] = BrokenTanh()
    assert distbp.gradcheck(model, rng.standard_normal((4, 3))) > 1e-2


def test_dense_forward_is_affine(rng):
    model = mlp([3, 2])
    x = rng.standard_normal((5, 3))
    weight, bias = (p.data for _, p in model.named_parameters())
    np.testing.assert_allclose(model.forward(x), x @ weight + bias, rtol=1e-12)


def test_sigmoid_and_tanh_do_not_overflow():
    x = np.array([[-1e4, -50.0, 0.0, 50.0, 1e4]], dtype=np.float32)
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        out, _ = distbp.Sigmoid().forward(x)
    np.testing.assert_allclose(out, [[0, 0, 0.5, 1, 1]], atol=1e-7)
    assert out.dtype == np.float32


def test_leaky_relu_values():
    out, _ = distbp.LeakyReLU(0.1).forward(np.array([[-2.0, 3.0]]))
    np.testing.assert_array_equal(out, [[-0.2, 3.0]])


@pytest.mark.parametrize("args", [(0, 3), (3, -1), (2.5, 3), (True, 2)])
def test_dense_rejects_bad_sizes(args):
    with pytest.raises(ValueError, match="Dense: (in|out)_features must be a positive integer"):
        distbp.Dense(*args)


def test_dense_rejects_wrong_input_width():
    model = mlp([4, 3, 2])
    with pytest.raises(ValueError, match=r"layer 0 \(Dense\(4, 3\)\) expects input of "
                                         r"shape \(batch, 4\), got \(2, 5\)"):
        model.forward(np.zeros((2, 5)))
