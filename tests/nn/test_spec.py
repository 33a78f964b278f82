"""The --model spec (distbp.nn.spec): layer stacks from short strings."""

import numpy as np
import pytest

import distbp
from distbp.nn.spec import CNN_SPEC, build_layers, mlp_spec


def test_spec_builds_the_cnn():
    layers = build_layers(CNN_SPEC, (784,), 10)
    names = [type(layer).__name__ for layer in layers]
    assert names[:2] == ["Reshape", "Conv2D"] and names[-1] == "Dense"
    m = distbp.Sequential(layers, dtype=np.float32)
    assert m.forward(np.zeros((2, 784), np.float32)).shape == (2, 10)
    with pytest.raises(ValueError, match="unknown layer 'conv'"):
        build_layers("conv", (784,), 10)
    with pytest.raises(ValueError, match="needs image input"):
        build_layers("conv8", (30,), 10)


def test_spec_tokens_and_shapes():
    layers = build_layers("conv8k5s1p0,pool2,gap,dense16,leakyrelu,dropout0.1", (64,), 3)
    assert [repr(layer) for layer in layers] == [
        "Reshape(1, 8, 8)", "Conv2D(1, 8, kernel_size=5, stride=1, padding=0)",
        "MaxPool2D(2)", "GlobalAvgPool2D()", "Dense(8, 16)", "LeakyReLU(0.01)",
        "Dropout(0.1)", "Dense(16, 3)"]


def test_mlp_spec():
    assert mlp_spec([128, 64], "tanh") == "dense128,tanh,dense64,tanh"
    assert [repr(layer) for layer in build_layers(mlp_spec([], "relu"), (5,), 2)] == [
        "Dense(5, 2)"]
