"""Loss values, stability and input validation."""

import numpy as np
import pytest

import distbp


def test_softmax_cross_entropy_value():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    total, _ = distbp.SoftmaxCrossEntropy().forward(logits, np.array([2, 1]))
    expected = -np.log(np.exp(3) / np.exp([1, 2, 3]).sum()) + np.log(3)
    assert total == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_huge_logits_are_finite(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    loss = distbp.SoftmaxCrossEntropy()
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow is fine
        total, cache = loss.forward(logits, np.array([1, 0]))
        grad = loss.backward(cache, 0.5)
    assert total == pytest.approx(2e4 + (2e4 + np.log(2)), rel=1e-6)
    assert np.all(np.isfinite(grad)) and grad.dtype == dtype
    np.testing.assert_allclose(grad.sum(axis=1), 0, atol=1e-6)


def test_mse_matches_mean_over_all_elements(rng):
    out, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    total, _ = distbp.MSE().forward(out, y)
    assert total / 5 == pytest.approx(np.mean((out - y) ** 2), rel=1e-12)


@pytest.mark.parametrize("labels,message", [
    (np.array([0, 3]), r"labels must be in \[0, 3\), got values in \[0, 3\]"),
    (np.array([-1, 0]), r"labels must be in \[0, 3\), got values in \[-1, 0\]"),
    (np.array([0, 1, 2]), r"expected 2 labels of shape \(2,\), got shape \(3,\)"),
    (np.array([0.0, 1.0]), "labels must be integers, got dtype float64"),
])
def test_softmax_cross_entropy_rejects_bad_labels(labels, message):
    with pytest.raises(ValueError, match=message):
        distbp.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), labels)


def test_mse_rejects_wrong_shape():
    with pytest.raises(ValueError, match=r"MSE: targets must have the output's shape \(2, 3\)"):
        distbp.MSE().forward(np.zeros((2, 3)), np.zeros((2,)))


def test_correct_counts():
    logits = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert distbp.SoftmaxCrossEntropy().correct(logits, np.array([1, 1, 1])) == 2
    assert distbp.MSE().correct(logits, logits) is None


@pytest.mark.parametrize("loss,target", [
    (distbp.SoftmaxCrossEntropy(), lambda rng: rng.integers(0, 4, 6)),
    (distbp.MSE(), lambda rng: rng.standard_normal((6, 4))),
], ids=["softmax_xent", "mse"])
def test_loss_gradcheck(loss, target, rng):
    assert distbp.gradcheck(loss, rng.standard_normal((6, 4)) * 3, target(rng)) < 1e-7
