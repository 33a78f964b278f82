"""Sequential (distbp.nn.sequential): flat buffers, views, dtypes, bad input."""

import subprocess
import sys

import numpy as np
import pytest
from conftest import mlp

import distbp


def api_model():
    return distbp.Sequential([distbp.Dense(4, 8), distbp.Tanh(), distbp.Dense(8, 3)],
                             seed=0, dtype=np.float64)


def test_named_parameters_are_views_into_flat_buffers():
    model = api_model()
    names = [(name, p.data.shape) for name, p in model.named_parameters()]
    assert names == [("0.weight", (4, 8)), ("0.bias", (8,)), ("2.weight", (8, 3)),
                     ("2.bias", (3,))]
    assert model.flat_params.ndim == 1 and model.flat_params.flags.c_contiguous
    assert model.flat_params.size == 4 * 8 + 8 + 8 * 3 + 3 == model.flat_grads.size
    for _, p in model.named_parameters():
        assert np.shares_memory(p.data, model.flat_params)
        assert np.shares_memory(p.grad, model.flat_grads)
    # writing through a view changes the flat buffer and the forward pass
    for _, p in model.named_parameters():
        p.data[...] = 0
    assert not model.flat_params.any()
    np.testing.assert_array_equal(model.forward(np.ones((2, 4))), np.zeros((2, 3)))


def test_loss_and_backward_fills_every_grad(rng):
    model = api_model()
    x, y = rng.standard_normal((5, 4)), rng.integers(0, 3, 5)
    loss = model.loss_and_backward(x, y, distbp.SoftmaxCrossEntropy())
    total, _ = distbp.SoftmaxCrossEntropy().forward(model.forward(x), y)
    assert loss == pytest.approx(total / 5, rel=1e-12)
    for name, p in model.named_parameters():
        assert np.abs(p.grad).sum() > 0, name


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_no_dtype_promotion_in_a_step(dtype, rng):
    model = mlp([6, 5, 5, 3], distbp.Sigmoid, dtype=dtype)
    x = rng.standard_normal((4, 6))  # float64 input is cast once, at the boundary
    out, caches = model.forward_train(x)
    assert out.dtype == dtype
    assert all(c.dtype == dtype for c in caches if isinstance(c, np.ndarray))
    model.loss_and_backward(x, rng.integers(0, 3, 4), distbp.SoftmaxCrossEntropy())
    assert model.flat_grads.dtype == dtype and model.flat_params.dtype == dtype


def test_default_dtype_is_float32():
    assert mlp([2, 2], dtype=np.float32).flat_params.dtype == np.float32
    assert distbp.Sequential([distbp.Dense(2, 2)]).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int32, "float16", "nonsense", complex])
def test_unknown_dtype_is_rejected(dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        distbp.Sequential([distbp.Dense(2, 2)], dtype=dtype)


def test_bad_input_shapes():
    model = api_model()
    with pytest.raises(ValueError, match=r"model input must be at least 2-D .* got shape \(4,\)"):
        model.forward(np.zeros(4))
    with pytest.raises(ValueError, match=r"expected 2 labels of shape \(2,\), got shape \(3,\)"):
        model.loss_and_backward(np.zeros((2, 4)), np.array([0, 1, 2]),
                                distbp.SoftmaxCrossEntropy())


def test_copy_is_independent_and_casts():
    model = api_model()
    clone = model.copy(dtype=np.float32)
    assert clone.flat_params.dtype == np.float32
    clone.flat_params[...] = 0
    assert model.flat_params.any()
    assert all(np.shares_memory(p.data, clone.flat_params) for _, p in clone.named_parameters())


def test_use_grad_buffer_rebinds_views(rng):
    model = api_model()
    storage = np.zeros(model.num_parameters + 2)
    model.use_grad_buffer(storage[:model.num_parameters])
    model.loss_and_backward(rng.standard_normal((3, 4)), np.array([0, 1, 2]),
                            distbp.SoftmaxCrossEntropy())
    assert storage[:-2].any() and not storage[-2:].any()
    assert all(np.shares_memory(p.grad, storage) for _, p in model.named_parameters())


def test_import_needs_no_mpi():
    code = ("import sys; sys.modules['mpi4py'] = None\n"
            "import distbp, numpy as np\n"
            "m = distbp.Sequential([distbp.Dense(2, 2)])\n"
            "assert not any(k.startswith('mpi4py') and sys.modules[k] for k in sys.modules)\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "ok", result.stderr


class Untouchable(distbp.Layer):
    """A parameter-free layer whose backward must not run."""

    def forward(self, x, ws=None):
        return x, None

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=None):
        raise AssertionError("backward ran below the first layer with parameters")


def test_backward_stops_at_the_first_layer_with_parameters(rng):
    model = distbp.Sequential([Untouchable(), distbp.Reshape(1, 4, 4),
                               distbp.Conv2D(1, 2, 3, 1, 1), distbp.Flatten(),
                               distbp.Dense(32, 3)], dtype=np.float64)
    assert model.first_trained == 2
    model.loss_and_backward(rng.standard_normal((3, 16)), rng.integers(0, 3, 3),
                            distbp.SoftmaxCrossEntropy())
    assert np.abs(model.layers[2].dW).sum() > 0
