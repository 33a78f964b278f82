"""Numeric gradient check: central differences in float64 against backprop.

Works on a layer, a loss, or a whole model; returns the max relative error.
"""

from __future__ import annotations

import copy

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer
from distbp.nn.losses import Loss
from distbp.nn.sequential import Sequential

Array = np.ndarray


ZERO = 1e-7  # below this both gradients are zero (e.g. a bias before BatchNorm), up to noise


def relative_error(analytic: Array, numeric: Array) -> float:
    """max|a - n| / max(max|a|, max|n|): relative to the tensor's scale; 0 when both are
    below ZERO (central differences leave ~1e-10 of noise on a truly zero gradient)."""
    scale = max(np.abs(analytic).max(initial=0), np.abs(numeric).max(initial=0))
    if scale < ZERO:
        return 0.0
    return float(np.abs(analytic - numeric).max() / scale)


def numeric_gradient(f, values: Array, eps: float) -> Array:
    """d f() / d values by central differences, perturbing `values` in place."""
    grad = np.zeros_like(values)
    flat, flat_grad = values.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = f()
        flat[i] = saved - eps
        minus = f()
        flat[i] = saved
        flat_grad[i] = (plus - minus) / (2 * eps)
    return grad


def check_loss(loss: Loss, out: Array, y: Array, eps: float) -> float:
    """gradcheck of a loss: d(loss sum)/d(out)."""
    out = np.array(out, dtype=np.float64)
    _, cache = loss.forward(out, y)
    analytic = loss.backward(cache, 1.0)
    numeric = numeric_gradient(lambda: loss.forward(out, y)[0], out, eps)
    return relative_error(analytic, numeric)


def check_model(model: Sequential, x: Array, y: Array | None, loss: Loss | None,
                eps: float, seed: int) -> float:
    """gradcheck of a float64 model: d/d(input) and every parameter."""
    x = np.array(x, dtype=np.float64)
    out, caches = model.forward_train(x)
    train = lambda: model.forward_train(x)[0]  # noqa: E731 - training mode, as backprop
    if loss is None:  # a fixed random projection makes the output a scalar
        weights = np.random.default_rng(seed).standard_normal(out.shape)
        value = lambda: float(np.sum(train() * weights))  # noqa: E731
        dout = weights.copy()
    else:
        value = lambda: loss.forward(train(), y)[0]  # noqa: E731
        dout = loss.backward(loss.forward(out, y)[1], 1.0)
    for index in range(len(model.layers) - 1, -1, -1):  # down to d/d(input)
        dout = model.layers[index].backward(dout, caches[index], ws=model.workspaces[index])
    errors = [relative_error(dout, numeric_gradient(value, x, eps))]
    for _, offset, shape in model.layout:
        part = slice(offset, offset + int(np.prod(shape)))
        errors.append(relative_error(model.flat_grads[part],
                                     numeric_gradient(value, model.flat_params[part], eps)))
    return max(errors)


def gradcheck(target: Layer | Loss | Sequential, x: Array, y: Array | None = None,
              loss: Loss | None = None, eps: float = 1e-5, seed: int = 0) -> float:
    """Max relative error between backprop and central differences, in float64.

    target: a Layer (checked inside a float64 copy), a Loss (d loss-sum / d x, with
    labels y), or a Sequential (all parameters and the input; with `loss` and `y`,
    else against a fixed random projection of the output).
    """
    if isinstance(target, Loss):
        check(y is not None, "gradcheck of a loss needs targets y")
        return check_loss(target, x, y, eps)
    if isinstance(target, Layer):
        model = Sequential([copy.deepcopy(target)], seed=seed, dtype=np.float64)
    elif isinstance(target, Sequential):
        model = target.copy(dtype=np.float64)
    else:
        raise TypeError(f"gradcheck: expected a Layer, Loss or Sequential, got {type(target)}")
    check(loss is None or y is not None, "gradcheck with a loss needs targets y")
    return check_model(model, x, y, loss, eps, seed)
