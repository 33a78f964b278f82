"""BatchNorm (distbp.nn.normalization): gradient checks, running statistics, and
statistics of the global batch (the allreduce goes through the step context)."""

import numpy as np
import pytest
from conftest import float64_model, layer_gradcheck

import distbp
from distbp.nn.layer import StepContext
from distbp.nn.normalization import row_dots, row_sums
from distbp.nn.workspace import chwb, from_chwb


@pytest.mark.parametrize("layer,shape", [
    (distbp.BatchNorm(2), (4, 2, 5, 5)),
    (distbp.BatchNorm(5), (6, 5)),
], ids=repr)
def test_layer_gradcheck(layer, shape):
    assert layer_gradcheck(layer, shape) < 1e-7


def test_batchnorm_inference_uses_running_statistics():
    rng = np.random.default_rng(2)
    m = float64_model(distbp.BatchNorm(3))
    x = rng.standard_normal((200, 3)) * 4 + 7
    for _ in range(200):
        m.forward_train(x)
    running = m.flat_state.reshape(2, 3)
    np.testing.assert_allclose(running[0], x.mean(0), rtol=1e-6)
    np.testing.assert_allclose(running[1], x.var(0, ddof=1), rtol=1e-6)
    out = m.forward(x)
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-6)


class SumOfTwoHalves:
    """A stand-in communicator: this 'rank' holds one half, the other half is added."""

    def __init__(self, other_sums):
        self.other_sums, self.calls = other_sums, 0

    def Allreduce(self, buffer):  # noqa: N802 - the MPI verb
        buffer += self.other_sums[self.calls]
        self.calls += 1


def test_batchnorm_normalises_with_the_global_batch_statistics():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((8, 3)) * 3 + 1
    whole = float64_model(distbp.BatchNorm(3))
    expected, _ = whole.forward_train(x)
    half = float64_model(distbp.BatchNorm(3)).layers[0]
    second = x[4:]
    half.context = StepContext(SumOfTwoHalves([np.concatenate(
        [second.sum(0), (second * second).sum(0), [4]])]))
    out, _ = half.forward(x[:4])
    np.testing.assert_allclose(out, expected[:4], rtol=1e-12)  # not the first half's own


def test_batchnorm_of_held_images_equals_batchnorm_of_plain_ones():
    rng = np.random.default_rng(6)
    plain = (rng.standard_normal((5, 3, 4, 6)) * 2 + 3).astype(np.float32)
    held = from_chwb(np.ascontiguousarray(chwb(plain)))
    results = []
    for x in (plain, held):
        layer = distbp.Sequential([distbp.BatchNorm(3)]).layers[0]
        layer.context = StepContext()
        out, cache = layer.forward(x)
        assert chwb(out).flags.c_contiguous  # images come out held (C, H, W, B) either way
        dout = from_chwb(np.ascontiguousarray(chwb(np.cos(plain))))
        results.append((out.copy(), layer.backward(dout, cache).copy(), layer.dgamma.copy()))
    for first, second in zip(*results, strict=True):
        np.testing.assert_array_equal(first, second)


def test_float32_statistics_are_summed_to_float64_accuracy():
    rng = np.random.default_rng(7)
    rows = (rng.standard_normal((3, 64 * 28 * 28)) + 100).astype(np.float32)
    exact = rows.astype(np.float64).sum(axis=1)
    np.testing.assert_allclose(row_sums(rows, 28), exact, rtol=2e-7)
    exact_squares = (rows.astype(np.float64) ** 2).sum(axis=1)
    np.testing.assert_allclose(row_dots(rows, rows, 28), exact_squares, rtol=2e-7)
