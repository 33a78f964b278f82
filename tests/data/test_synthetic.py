"""The embedded synthetic dataset (distbp.data.synthetic)."""

import numpy as np

from distbp.data.synthetic import synthetic


def test_synthetic_is_deterministic_and_balanced():
    a, b = synthetic(), synthetic()
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert a.x_train.dtype == np.float32 and a.x_train.shape == (20000, 32)
    assert set(np.unique(a.y_train)) == set(range(10))
    assert np.bincount(a.y_train).min() > 1000
