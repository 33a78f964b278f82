"""Dropout (distbp.nn.dropout): gradient check, and masks that follow the example,
not its position or rank."""

import numpy as np
import pytest
from conftest import float64_model, layer_gradcheck

import distbp
from distbp.nn.dropout import uniform_hash
from distbp.nn.layer import StepContext


@pytest.mark.parametrize("layer,shape", [
    (distbp.Dropout(0.3), (4, 7)),
    (distbp.Dropout(0.0), (3, 2)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    assert layer_gradcheck(layer, shape) < 1e-7


def test_dropout_masks_depend_on_example_not_position():
    x = np.ones((6, 50))
    layer = float64_model(distbp.Dense(50, 50), distbp.Dropout(0.5)).layers[1]
    rows = np.array([10, 11, 12, 13, 14, 15])
    layer.context = StepContext(None, seed=7, step=3, rows=rows)
    whole, _ = layer.forward(x)
    layer.context = StepContext(None, seed=7, step=3, rows=rows[4:])
    part, _ = layer.forward(x[4:])
    np.testing.assert_array_equal(part, whole[4:])  # rows 14, 15 get the same masks
    kept = np.count_nonzero(whole) / whole.size
    assert 0.35 < kept < 0.65 and set(np.unique(whole)) == {0.0, 2.0}
    layer.context = StepContext(None, seed=7, step=4, rows=rows)
    assert not np.array_equal(layer.forward(x)[0], whole)  # another step, another mask
    layer.context = None
    np.testing.assert_array_equal(layer.forward(x)[0], x)  # inference: identity


def test_uniform_hash_is_uniform():
    values = uniform_hash(1, 2, 3, np.arange(1000), 100)
    assert values.min() >= 0 and values.max() < 1
    assert abs(values.mean() - 0.5) < 0.01 and abs(values.std() - 0.2887) < 0.01
