"""Layers that only change the shape of each example (views, no copies)."""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


class Flatten(Layer):
    """(B, ...) -> (B, features)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, ...) -> out (B, prod(...)), a view; the cache is the input shape."""
        return x.reshape(len(x), int(np.prod(x.shape[1:]))), x.shape

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, F) -> dx shaped like the input (a view)."""
        return dout.reshape(cache)


class Reshape(Layer):
    """(B, features) -> (B, *shape), e.g. flat image rows to (B, 1, 28, 28)."""

    def __init__(self, *shape: int) -> None:
        check_positive_ints("Reshape", **{f"dimension {i}": d for i, d in enumerate(shape)})
        self.shape = tuple(int(d) for d in shape)

    def config(self) -> dict[str, list[int]]:
        return {"args": list(self.shape)}

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, F) -> out (B, *shape), a view; the cache is the input shape."""
        check(int(np.prod(x.shape[1:])) == int(np.prod(self.shape)),
              f"layer {self.name} ({self!r}) cannot reshape {x.shape[1:]} to {self.shape}")
        return x.reshape(len(x), *self.shape), x.shape

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, *shape) -> dx (B, F) (a view)."""
        return dout.reshape(cache)

    def __repr__(self) -> str:
        return f"Reshape{self.shape}"
