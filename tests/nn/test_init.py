"""Initialisation (distbp.nn.init): deterministic from the seed, scaled for what follows."""

import numpy as np
import pytest
from conftest import mlp

import distbp
from distbp.nn.init import nonlinearity_after


def test_initialisation_is_deterministic_and_scaled():
    a, b = mlp([50, 400, 10], distbp.ReLU, seed=7), mlp([50, 400, 10], distbp.ReLU, seed=7)
    np.testing.assert_array_equal(a.flat_params, b.flat_params)
    assert not np.array_equal(a.flat_params, mlp([50, 400, 10], distbp.ReLU, seed=8).flat_params)
    he = a.layers[0].W  # followed by ReLU: He normal, std sqrt(2 / fan_in)
    assert he.std() == pytest.approx(np.sqrt(2 / 50), rel=0.05)
    glorot = a.layers[2].W  # last layer: Glorot uniform, limit sqrt(6 / (fan_in + fan_out))
    limit = np.sqrt(6 / 410)
    assert np.abs(glorot).max() <= limit and glorot.std() == pytest.approx(limit / np.sqrt(3),
                                                                            rel=0.05)
    assert not a.layers[0].b.any()


def test_the_activation_after_normalisation_pooling_and_dropout_decides():
    layers = [distbp.Dense(4, 4), distbp.BatchNorm(4), distbp.Dropout(0.1), distbp.ReLU(),
              distbp.Dense(4, 4), distbp.LeakyReLU(), distbp.Dense(4, 4), distbp.Tanh(),
              distbp.Dense(4, 2)]
    assert [nonlinearity_after(layers, i) for i in (0, 4, 6, 8)] == [
        "relu", "leaky_relu", "linear", "linear"]
