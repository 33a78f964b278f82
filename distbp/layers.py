"""Layers as small kernels: forward(x, ws) -> (out, cache), backward(dout, cache, ...) -> dx.

Parameters and their gradients are views into the model's flat buffers; backward
writes parameter gradients into those views in place and never rebinds them. Outputs
go into workspace buffers (reused every step); activation backwards overwrite dout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distbp.errors import check
from distbp.workspace import FRESH, Workspace

Array = np.ndarray


@dataclass
class StepContext:
    """What a training step tells layers that need more than their input: the
    communicator (BatchNorm's global statistics), and the seed, the step and the global
    example index of each row (Dropout's masks). None outside training: inference."""

    comm: object
    seed: int = 0
    step: int = 0
    rows: np.ndarray | None = None  # global example indices of this rank's rows

    def rows_for(self, count: int) -> np.ndarray:
        return np.arange(count) if self.rows is None else self.rows[:count]


class Layer:
    """Base class. A layer without parameters only implements forward/backward."""

    name: str = "?"
    context: StepContext | None = None  # set by Sequential.forward_train
    collective = False  # True: forward/backward communicate, every rank must run them

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of non-trained state (e.g. running statistics), kept in model.flat_state."""
        return {}

    def bind_state(self, state: dict[str, Array]) -> None:
        """Receive views into the model's flat state buffer."""

    def init_state(self) -> None:
        """Fill the bound state."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of this layer's parameters, in buffer order."""
        return {}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Receive views into the flat parameter and gradient buffers."""

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        """Fill the bound parameters (deterministic given rng)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, object]:
        """(output, what backward needs); the output may be a workspace buffer."""
        raise NotImplementedError

    def backward(self, dout: Array, cache: object, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        """Write (or add) parameter gradients; return d/d(input), possibly in dout itself."""
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

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        check(x.ndim == 2 and x.shape[1] == self.in_features,
              f"layer {self.name} ({self!r}) expects input of shape (batch, "
              f"{self.in_features}), got {x.shape}")
        out = np.matmul(x, self.W, out=ws.array("out", (len(x), self.out_features), x.dtype))
        out += self.b  # (B, out)
        return out, x

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        x = cache  # (B, in)
        if accumulate:
            self.dW += np.matmul(x.T, dout, out=ws.array("dW", self.dW.shape, dout.dtype))
            self.db += np.sum(dout, axis=0, out=ws.array("db", self.db.shape, dout.dtype))
        else:
            np.matmul(x.T, dout, out=self.dW)
            np.sum(dout, axis=0, out=self.db)
        if not need_dx:  # the first layer: nobody needs d/d(input), skip that GEMM
            return None
        return np.matmul(dout, self.W.T, out=ws.array("dx", x.shape, dout.dtype))

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"


class ReLU(Layer):
    """max(x, 0)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        out = np.maximum(x, 0, out=ws.array("out", x.shape, x.dtype))
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        positive = np.greater(cache, 0, out=ws.array("mask", cache.shape, bool))
        return np.multiply(dout, positive, out=dout)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        check(0 <= negative_slope < 1,
              f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        out = np.multiply(x, self.negative_slope, out=ws.array("out", x.shape, x.dtype))
        return np.maximum(x, out, out=out), out  # max(x, a x) for 0 <= a < 1

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        slope = np.greater(cache, 0, out=ws.array("slope", cache.shape, dout.dtype))
        slope *= 1 - self.negative_slope
        slope += self.negative_slope  # 1 where x > 0, negative_slope elsewhere
        return np.multiply(dout, slope, out=dout)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.negative_slope})"


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2: no overflow for any x."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        out = np.multiply(x, 0.5, out=ws.array("out", x.shape, x.dtype))
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        local = np.subtract(1, cache, out=ws.array("local", cache.shape, cache.dtype))
        local *= cache  # s (1 - s)
        return np.multiply(dout, local, out=dout)


class Tanh(Layer):
    """tanh(x)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        out = np.tanh(x, out=ws.array("out", x.shape, x.dtype))
        return out, out

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        local = np.multiply(cache, cache, out=ws.array("local", cache.shape, cache.dtype))
        np.subtract(1, local, out=local)  # 1 - tanh^2
        return np.multiply(dout, local, out=dout)


def nonlinearity_after(layers: list[Layer], index: int) -> str:
    """The activation that follows layers[index] (past normalisation, dropout and
    pooling), used to pick its initialisation."""
    for following in layers[index + 1:]:
        if isinstance(following, ReLU):
            return "relu"
        if isinstance(following, LeakyReLU):
            return "leaky_relu"
        if not getattr(following, "transparent_to_init", False):
            return "linear"
    return "linear"
