"""Conv2D (distbp.nn.conv): gradient checks (float64, central differences), a
direct convolution, and a CNN using every layer kind."""

import numpy as np
import pytest
from conftest import float64_model, layer_gradcheck

import distbp
from distbp.nn import conv
from distbp.nn.workspace import Workspace, chwb, from_chwb

LOSS = distbp.SoftmaxCrossEntropy()


@pytest.mark.parametrize("layer,shape", [
    (distbp.Conv2D(2, 3, 3, 1, 1), (3, 2, 6, 6)),
    (distbp.Conv2D(2, 3, 3, 2, 0), (3, 2, 7, 7)),
    (distbp.Conv2D(2, 2, 2, 2, 1), (2, 2, 5, 5)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    assert layer_gradcheck(layer, shape) < 1e-7


def test_cnn_with_every_layer_gradcheck():
    rng = np.random.default_rng(5)
    m = float64_model(distbp.Reshape(1, 6, 6), distbp.Conv2D(1, 4, 3, 1, 1), distbp.BatchNorm(4),
              distbp.ReLU(), distbp.MaxPool2D(2), distbp.Conv2D(4, 4, 3, 1, 1), distbp.Tanh(),
              distbp.GlobalAvgPool2D(), distbp.Dropout(0.2), distbp.Dense(4, 6),
              distbp.BatchNorm(6), distbp.Dense(6, 3))
    x, y = rng.standard_normal((4, 36)), rng.integers(0, 3, 4)
    assert distbp.gradcheck(m, x, y, LOSS) < 1e-7
    assert distbp.gradcheck(m, x) < 1e-7


def test_conv_matches_a_direct_convolution():
    rng = np.random.default_rng(0)
    conv = float64_model(distbp.Conv2D(2, 3, 3, stride=2, padding=1))
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


@pytest.mark.parametrize("stride,padding", [(1, 1), (2, 1), (1, 0), (2, 2)])
def test_conv_holds_its_output_and_takes_either_layout(stride, padding):
    rng = np.random.default_rng(3)
    conv = float64_model(distbp.Conv2D(2, 3, 3, stride, padding)).layers[0]
    plain = rng.standard_normal((4, 2, 7, 6))
    held = from_chwb(np.ascontiguousarray(chwb(plain)))
    out, cache = conv.forward(plain)
    assert chwb(out).flags.c_contiguous  # (C, H, W, B) in memory: the GEMM's own output
    held_out, held_cache = conv.forward(held)
    np.testing.assert_array_equal(held_out, out)
    dout = rng.standard_normal(out.shape)
    dx = conv.backward(dout, cache)
    weight_grad = conv.dW.copy()
    np.testing.assert_array_equal(conv.backward(from_chwb(np.ascontiguousarray(chwb(dout))),
                                                held_cache), dx)
    np.testing.assert_array_equal(conv.dW, weight_grad)
    conv.backward(dout, cache, accumulate=True)
    np.testing.assert_allclose(conv.dW, 2 * weight_grad, rtol=1e-12)
    assert conv.backward(dout, cache, need_dx=False) is None


def test_conv_padding_wider_than_the_kernel_reach_gradchecks():
    assert layer_gradcheck(distbp.Conv2D(1, 2, 3, 1, 3), (2, 1, 4, 5)) < 1e-7


def test_gemms_on_few_patch_rows_run_in_column_blocks_with_the_same_results(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 1, 28, 28))  # 6,272 columns: 3 blocks of 2,048 and a rest
    results = []
    for rows_limit, count in ((conv.BLOCK_ROWS, 4), (0, 1)):  # blocked, then one GEMM each
        monkeypatch.setattr(conv, "BLOCK_ROWS", rows_limit)
        layer = float64_model(distbp.Conv2D(1, 3, 3, 1, 1)).layers[0]
        out, cache = layer.forward(x)
        assert len(conv.blocks(cache[0])) == count
        layer.backward(np.cos(out), cache)
        results.append((out.copy(), layer.dW.copy(), layer.db.copy()))
    for blocked, whole in zip(*results, strict=True):
        np.testing.assert_allclose(blocked, whole, rtol=1e-12, atol=1e-12)


def test_an_empty_batch_gives_zero_gradients():  # a rank with an empty shard
    for channels in (1, 8):  # column blocks (few patch rows) and one GEMM
        layer, ws = float64_model(distbp.Conv2D(channels, 2, 3, 1, 1)).layers[0], Workspace()
        for batch in (3, 0):  # the empty batch's buffers are the full batch's, reused
            out, cache = layer.forward(np.ones((batch, channels, 5, 5)), ws)
            dx = layer.backward(np.ones(out.shape), cache, ws=ws)
        assert out.shape == (0, 2, 5, 5) and dx.shape == (0, channels, 5, 5)
        assert not layer.dW.any() and not layer.db.any()
