"""Elementwise activations: out has the input's shape, and backward overwrites dout
with dout * f'(x) (the cache holds what f' needs: the output, or the input)."""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer
from distbp.nn.pool import MaxPool2D
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


class ReLU(Layer):
    """max(x, 0). Before a MaxPool2D it hands itself over to the pool, which applies it to
    its output, 4x smaller (max commutes with max(., 0): same values, same gradients)."""

    init_name = "relu"  # layers before it use He initialisation
    deferred = False  # True: the MaxPool2D after it applies it

    def link(self, following: Layer) -> None:
        if isinstance(following, MaxPool2D):
            self.deferred = following.relu = True

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array | None]:
        """x (B, ...) -> out (B, ...); the cache is out (deferred: x itself, no cache)."""
        if self.deferred:
            return x, None
        out = np.maximum(x, 0, out=ws.like("out", x))
        return out, out

    def backward(self, dout: Array, cache: Array | None, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, ...) -> dx (B, ...), in dout: dout where out > 0, else 0."""
        if cache is None:  # deferred: the pool's backward masked it
            return dout
        positive = np.greater(cache, 0, out=ws.like("mask", cache, bool))
        return np.multiply(dout, positive, out=dout)


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    init_name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        check(0 <= negative_slope < 1,
              f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def config(self) -> dict[str, float]:
        return {"negative_slope": self.negative_slope}

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        """x (B, ...) -> out (B, ...); the cache is out (positive exactly where x is)."""
        out = np.multiply(x, self.negative_slope, out=ws.like("out", x))
        return np.maximum(x, out, out=out), out  # max(x, a x) for 0 <= a < 1

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, ...) -> dx (B, ...), in dout: dout x (1 or negative_slope)."""
        slope = np.greater(cache, 0, out=ws.like("slope", cache, dout.dtype))
        slope *= 1 - self.negative_slope
        slope += self.negative_slope  # 1 where x > 0, negative_slope elsewhere
        return np.multiply(dout, slope, out=dout)

    def __repr__(self) -> str:
        return f"LeakyReLU({self.negative_slope})"


class Sigmoid(Layer):
    """1 / (1 + exp(-x)), computed as (1 + tanh(x/2)) / 2: no overflow for any x."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        """x (B, ...) -> s (B, ...); the cache is s."""
        out = np.multiply(x, 0.5, out=ws.like("out", x))
        np.tanh(out, out=out)
        out += 1
        out *= 0.5
        return out, out

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, ...) -> dx (B, ...), in dout: dout s (1 - s)."""
        local = np.subtract(1, cache, out=ws.like("local", cache))
        local *= cache  # s (1 - s)
        return np.multiply(dout, local, out=dout)


class Tanh(Layer):
    """tanh(x)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        """x (B, ...) -> t (B, ...); the cache is t."""
        out = np.tanh(x, out=ws.like("out", x))
        return out, out

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, ...) -> dx (B, ...), in dout: dout (1 - t^2)."""
        local = np.multiply(cache, cache, out=ws.like("local", cache))
        np.subtract(1, local, out=local)  # 1 - tanh^2
        return np.multiply(dout, local, out=dout)
