"""The numeric gradient check (distbp.nn.gradcheck) on whole models, and that it catches
a wrong derivative."""

import numpy as np
from conftest import mlp

import distbp


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
