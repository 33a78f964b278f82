"""Layers as small kernels: forward(x) -> (out, cache), backward(dout, cache) -> dx.

Parameters and their gradients are views into the model's flat buffers; backward
writes parameter gradients into those views in place and never rebinds them.
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check

Array = np.ndarray


class Layer:
    """Base class. A layer without parameters only implements forward/backward."""

    name: str = "?"

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of this layer's parameters, in buffer order."""
        return {}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Receive views into the flat parameter and gradient buffers."""

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        """Fill the bound parameters (deterministic given rng)."""

    def forward(self, x: Array) -> tuple[Array, object]:
        raise NotImplementedError

    def backward(self, dout: Array, cache: object, accumulate: bool = False,
                 need_dx: bool = True) -> Array | None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Dense(Layer):
    """Affine layer y = x @ W + b with W shaped (in_features, out_features)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        for arg, value in (("in_features", in_features), ("out_features", out_features)):
            check(isinstance(value, (int, np.integer)) and not isinstance(value, bool)
                  and value > 0,
                  f"Dense: {arg} must be a positive integer, got {value!r}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.in_features, self.out_features),
                "bias": (self.out_features,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.W, self.b = params["weight"], params["bias"]
        self.dW, self.db = grads["weight"], grads["bias"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        fan_in, fan_out = self.in_features, self.out_features
        if nonlinearity in ("relu", "leaky_relu"):  # He et al. 2015
            values = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        else:  # Glorot & Bengio 2010, uniform
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, (fan_in, fan_out))
        self.W[...] = values
        self.b[...] = 0

    def forward(self, x: Array) -> tuple[Array, Array]:
        check(x.ndim == 2 and x.shape[1] == self.in_features,
              f"layer {self.name} ({self!r}) expects input of shape (batch, "
              f"{self.in_features}), got {x.shape}")
        out = x @ self.W  # (B, out)
        out += self.b
        return out, x

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True) -> Array | None:
        x = cache  # (B, in)
        if accumulate:
            self.dW += x.T @ dout
            self.db += dout.sum(axis=0)
        else:
            np.matmul(x.T, dout, out=self.dW)
            np.sum(dout, axis=0, out=self.db)
        return dout @ self.W.T if need_dx else None

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"


class ReLU(Layer):
    """max(x, 0)."""

    def forward(self, x: Array) -> tuple[Array, Array]:
        out = np.maximum(x, 0)
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True):
        return dout * (cache > 0)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        check(0 <= negative_slope < 1,
              f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Array) -> tuple[Array, Array]:
        positive = x > 0
        return np.where(positive, x, x * self.negative_slope), positive

    def backward(self, dout, cache, accumulate=False, need_dx=True):
        return np.where(cache, dout, dout * self.negative_slope)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.negative_slope})"


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2: no overflow for any x."""

    def forward(self, x: Array) -> tuple[Array, Array]:
        out = np.tanh(x * 0.5)
        out += 1
        out *= 0.5
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True):
        return dout * cache * (1 - cache)


class Tanh(Layer):
    """tanh(x)."""

    def forward(self, x: Array) -> tuple[Array, Array]:
        out = np.tanh(x)
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True):
        return dout * (1 - cache * cache)


def nonlinearity_after(layers: list[Layer], index: int) -> str:
    """The activation that follows layers[index], used to pick its initialisation."""
    following = layers[index + 1] if index + 1 < len(layers) else None
    if isinstance(following, ReLU):
        return "relu"
    if isinstance(following, LeakyReLU):
        return "leaky_relu"
    return "linear"
