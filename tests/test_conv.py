"""Convolutional layers, Dropout and BatchNorm: gradient checks (float64, central
differences), shapes, and the rank-count invariance of Dropout masks and BatchNorm."""

import numpy as np
import pytest

import distbp
from distbp.layers import StepContext
from distbp.regularize import uniform_hash
from distbp.spec import CNN_SPEC, build_layers

LOSS = distbp.SoftmaxCrossEntropy()


def model(*layers, seed=1):
    return distbp.Sequential(list(layers), seed=seed, dtype=np.float64)


@pytest.mark.parametrize("layer,shape", [
    (distbp.Conv2D(2, 3, 3, 1, 1), (3, 2, 6, 6)),
    (distbp.Conv2D(2, 3, 3, 2, 0), (3, 2, 7, 7)),
    (distbp.Conv2D(2, 2, 2, 2, 1), (2, 2, 5, 5)),
    (distbp.MaxPool2D(2), (3, 2, 6, 6)),
    (distbp.GlobalAvgPool2D(), (3, 2, 5, 5)),
    (distbp.Flatten(), (3, 2, 4, 4)),
    (distbp.BatchNorm(2), (4, 2, 5, 5)),
    (distbp.BatchNorm(5), (6, 5)),
    (distbp.Dropout(0.3), (4, 7)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    x = np.random.default_rng(11).standard_normal(shape)
    assert distbp.gradcheck(layer, x, seed=3) < 1e-7


def test_cnn_with_every_layer_gradcheck():
    rng = np.random.default_rng(5)
    m = model(distbp.Reshape(1, 6, 6), distbp.Conv2D(1, 4, 3, 1, 1), distbp.BatchNorm(4),
              distbp.ReLU(), distbp.MaxPool2D(2), distbp.Conv2D(4, 4, 3, 1, 1), distbp.Tanh(),
              distbp.GlobalAvgPool2D(), distbp.Dropout(0.2), distbp.Dense(4, 6),
              distbp.BatchNorm(6), distbp.Dense(6, 3))
    x, y = rng.standard_normal((4, 36)), rng.integers(0, 3, 4)
    assert distbp.gradcheck(m, x, y, LOSS) < 1e-7
    assert distbp.gradcheck(m, x) < 1e-7


def test_conv_matches_a_direct_convolution():
    rng = np.random.default_rng(0)
    conv = model(distbp.Conv2D(2, 3, 3, stride=2, padding=1))
    x = rng.standard_normal((2, 2, 5, 5))
    weight, bias = conv.layers[0].W, conv.layers[0].b
    bias[...] = rng.standard_normal(3)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.zeros((2, 3, 3, 3))
    for b in range(2):
        for o in range(3):
            for i in range(3):
                for j in range(3):
                    patch = padded[b, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
                    expected[b, o, i, j] = np.sum(patch * weight[o]) + bias[o]
    np.testing.assert_allclose(conv.forward(x), expected, rtol=1e-12)


def test_dropout_masks_depend_on_example_not_position():
    x = np.ones((6, 50))
    layer = model(distbp.Dense(50, 50), distbp.Dropout(0.5)).layers[1]
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


def test_batchnorm_inference_uses_running_statistics():
    rng = np.random.default_rng(2)
    m = model(distbp.BatchNorm(3))
    x = rng.standard_normal((200, 3)) * 4 + 7
    for _ in range(200):
        m.forward_train(x)
    running = m.flat_state.reshape(2, 3)
    np.testing.assert_allclose(running[0], x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(running[1], x.var(0, ddof=1), rtol=1e-6)
    out = m.forward(x)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-6)


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
