"""RNN and LSTM (distbp.nn.recurrent): gradient checks in both output modes, the LSTM
against a step-by-step reference in torch's gate order, initialisation, shape errors."""

import numpy as np
import pytest
from conftest import float64_model

import distbp


@pytest.mark.parametrize("cls", [distbp.RNN, distbp.LSTM])
@pytest.mark.parametrize("sequences", [False, True])
def test_recurrent_gradcheck(cls, sequences, rng):
    layer = cls(3, 4, return_sequences=sequences)
    assert distbp.gradcheck(layer, rng.standard_normal((2, 5, 3)), seed=1) < 1e-7


def test_a_recurrent_model_gradcheck_with_a_loss(rng):
    model = float64_model(distbp.Reshape(4, 3), distbp.LSTM(3, 5, return_sequences=True),
                          distbp.RNN(5, 4), distbp.Dense(4, 3))
    x, y = rng.standard_normal((6, 12)), rng.integers(0, 3, 6)
    assert distbp.gradcheck(model, x, y, distbp.SoftmaxCrossEntropy()) < 1e-7


def reference_lstm(x, w_ih, w_hh, b):
    """torch.nn.LSTM's equations, one step at a time (gates i, f, g, o)."""
    hidden = w_hh.shape[0]
    h, c, outputs = np.zeros((len(x), hidden)), np.zeros((len(x), hidden)), []
    for t in range(x.shape[1]):
        a = x[:, t] @ w_ih + h @ w_hh + b
        i, f, g, o = (a[:, k * hidden:(k + 1) * hidden] for k in range(4))
        i, f, o = (1 / (1 + np.exp(-v)) for v in (i, f, o))
        c = f * c + i * np.tanh(g)
        h = o * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs, axis=1)


def test_lstm_matches_the_reference_equations(rng):
    model = float64_model(distbp.LSTM(3, 4, return_sequences=True), seed=2)
    layer = model.layers[0]
    x = rng.standard_normal((5, 7, 3))
    expected = reference_lstm(x, layer.W_ih, layer.W_hh, layer.b)
    np.testing.assert_allclose(model.forward(x), expected, rtol=1e-12, atol=1e-14)
    last = float64_model(distbp.LSTM(3, 4), seed=2)
    np.testing.assert_allclose(last.forward(x), expected[:, -1], rtol=1e-12, atol=1e-14)


def test_initialisation_like_torch_with_an_open_forget_gate():
    layer = float64_model(distbp.LSTM(10, 16), seed=0).layers[0]
    bound = 1 / np.sqrt(16)
    for array in (layer.W_ih, layer.W_hh):
        assert np.abs(array).max() <= bound and array.std() > bound / 3
    np.testing.assert_array_equal(layer.b[16:32], 1.0)
    assert np.abs(np.delete(layer.b, np.s_[16:32])).max() <= bound
    assert layer.W_ih.shape == (10, 64) and layer.W_hh.shape == (16, 64)


def test_shapes_are_checked_in_one_line():
    with pytest.raises(ValueError, match=r"expects input \(batch, time, 3\), got \(2, 3\)"):
        float64_model(distbp.RNN(3, 2)).forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="LSTM: hidden_size must be a positive integer"):
        distbp.LSTM(3, 0)
