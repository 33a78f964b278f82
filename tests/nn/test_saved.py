"""Layer stacks as data (distbp.nn.saved): every layer type round-trips through its spec
and its repr; anything else is refused in one line."""

import pytest

import distbp
from distbp.nn.saved import LAYER_TYPES, layers_from_reprs, layers_from_spec, spec_of

LAYERS = [distbp.Reshape(1, 6, 6), distbp.Conv2D(1, 4, 3, 2, 1), distbp.BatchNorm(4, eps=1e-3),
          distbp.LeakyReLU(0.2), distbp.MaxPool2D(3), distbp.GlobalAvgPool2D(),
          distbp.Flatten(), distbp.Dropout(0.25), distbp.Dense(4, 36), distbp.Reshape(6, 6),
          distbp.LSTM(6, 5, return_sequences=True), distbp.RNN(5, 3), distbp.Tanh(),
          distbp.Sigmoid(), distbp.ReLU()]


def test_every_layer_type_round_trips():
    assert {type(layer).__name__ for layer in LAYERS} == set(LAYER_TYPES)
    rebuilt = layers_from_spec(spec_of(LAYERS))
    assert [repr(layer) for layer in rebuilt] == [repr(layer) for layer in LAYERS]
    assert rebuilt[2].eps == 1e-3  # beyond the repr: the spec keeps every argument
    assert [repr(layer) for layer in layers_from_reprs([repr(x) for x in LAYERS])] == \
        [repr(layer) for layer in LAYERS]


@pytest.mark.parametrize("bad", [[], [{"type": "Evil"}], [{"type": "Dense", "size": 3}],
                                 "Dense"])
def test_a_malformed_spec_is_one_line(bad):
    with pytest.raises(ValueError, match="model spec"):
        layers_from_spec(bad)


@pytest.mark.parametrize("text", ["__import__('os').system('true')", "Dense(x, 3)", "Dense(",
                                  "Evil(1)"])
def test_only_literal_calls_of_known_layers_are_read(text):
    with pytest.raises(ValueError):
        layers_from_reprs([text])
