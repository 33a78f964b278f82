"""The affine layer y = x @ W + b, the building block of every MLP."""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.init import init_weight
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


class Dense(Layer):
    """Affine layer y = x @ W + b with W shaped (in_features, out_features)."""

    def __init__(self, in_features: int, out_features: int) -> None:
        check_positive_ints("Dense", in_features=in_features, out_features=out_features)
        self.in_features = int(in_features)
        self.out_features = int(out_features)

    def config(self) -> dict[str, int]:
        return {"in_features": self.in_features, "out_features": self.out_features}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.in_features, self.out_features),
                "bias": (self.out_features,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.W, self.b = params["weight"], params["bias"]
        self.dW, self.db = grads["weight"], grads["bias"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        init_weight(self.W, rng, self.in_features, self.out_features, nonlinearity)
        self.b[...] = 0

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array]:
        """x (B, in) -> out (B, out); the cache is x."""
        check(x.ndim == 2 and x.shape[1] == self.in_features,
              f"layer {self.name} ({self!r}) expects input of shape (batch, "
              f"{self.in_features}), got {x.shape}")
        out = np.matmul(x, self.W, out=ws.array("out", (len(x), self.out_features), x.dtype))
        out += self.b  # (B, out)
        return out, x

    def backward(self, dout: Array, cache: Array, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        """dout (B, out) -> dx (B, in); dW (in, out) = x.T @ dout, db (out,) = sum of dout."""
        x = cache  # (B, in)
        if accumulate:
            self.dW += np.matmul(x.T, dout, out=ws.array("dW", self.dW.shape, dout.dtype))
            self.db += np.sum(dout, axis=0, out=ws.array("db", self.db.shape, dout.dtype))
        else:
            np.matmul(x.T, dout, out=self.dW)
            np.sum(dout, axis=0, out=self.db)
        if not need_dx:  # the first layer: nobody needs d/d(input), skip that GEMM
            return None
        # dx laid out as x (feature-major after a Flatten of images held (C, H, W, B))
        return np.matmul(dout, self.W.T, out=ws.like("dx", x, dout.dtype))

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"
