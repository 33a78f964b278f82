"""Gradient clipping (distbp.optim.clip): torch's formula, the norm before clipping."""

import numpy as np
import pytest
from conftest import mlp

import distbp


def test_clipping_scales_to_max_norm_and_returns_the_norm_before():
    model = mlp([3, 2])
    model.flat_grads[...] = np.arange(model.num_parameters, dtype=float)
    norm = float(np.linalg.norm(model.flat_grads))
    assert distbp.clip_grad_norm(model, 1.0) == pytest.approx(norm, rel=1e-12)
    assert np.linalg.norm(model.flat_grads) == pytest.approx(1.0 * norm / (norm + 1e-6))
    before = model.flat_grads.copy()
    assert distbp.clip_grad_norm(model, 10.0) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(model.flat_grads, before)  # below max_norm: untouched


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf")])
def test_max_norm_must_be_positive_and_finite(bad):
    with pytest.raises(ValueError, match="max_norm must be a finite number > 0"):
        distbp.clip_grad_norm(mlp([2, 2]), bad)
