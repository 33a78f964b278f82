"""Dropout and BatchNorm, written so that results never depend on the rank count.

Dropout draws its mask from a counter-based hash of (seed, step, layer, global example
index, feature): the same example gets the same mask whichever rank holds it. BatchNorm
uses the statistics of the GLOBAL batch: each rank's sums are allreduced (one small call
per layer in forward, one in backward), so the normalisation, the gradients and the
running statistics are those of one process on the whole batch. Per-rank statistics
would make the model depend on how the batch was split.
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.layers import Layer
from distbp.workspace import FRESH, Workspace

Array = np.ndarray
MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def uniform_hash(seed: int, step: int, layer: int, rows: Array, width: int) -> Array:
    """Uniform [0, 1) numbers, one per (row, feature), from splitmix64 of the counters."""
    key = np.uint64((seed * 0x9E3779B97F4A7C15 + step * 0xD1B54A32D192ED03
                     + layer * 0xABC98388FB8FAC03) & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        z = (rows.astype(np.uint64)[:, None] * np.uint64(0x8CB92BA72F3D8DD7)
             + np.arange(width, dtype=np.uint64)[None, :] * np.uint64(0x9E3779B97F4A7C15)
             + key)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


class Dropout(Layer):
    """Zero each feature with probability p while training (scaling the rest by 1/(1-p))."""

    transparent_to_init = True

    def __init__(self, p: float = 0.5) -> None:
        check(0 <= p < 1, f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array | None]:
        context = self.context
        if context is None or not self.p:  # inference
            return x, None
        rows = context.rows_for(len(x))
        keep = uniform_hash(context.seed, context.step, int(self.name), rows,
                            int(np.prod(x.shape[1:]))) >= self.p
        mask = (keep / (1 - self.p)).astype(x.dtype).reshape(x.shape)
        return x * mask, mask

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        return dout if cache is None else np.multiply(dout, cache, out=dout)

    def __repr__(self) -> str:
        return f"Dropout({self.p})"


class BatchNorm(Layer):
    """Batch normalisation over the global batch; (B, F) or, per channel, (B, C, H, W).

    gamma/beta are parameters; the running mean and variance (momentum 0.1, unbiased
    variance, as torch) are model state, used for inference.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        check(isinstance(num_features, int) and num_features > 0,
              f"BatchNorm: num_features must be a positive integer, got {num_features!r}")
        check(eps > 0 and 0 <= momentum <= 1, "BatchNorm: eps must be > 0, momentum in [0, 1]")
        self.num_features, self.eps, self.momentum = num_features, float(eps), float(momentum)

    collective = True  # forward and backward allreduce: every rank must call them together
    transparent_to_init = True

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"weight": (self.num_features,), "bias": (self.num_features,)}

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (self.num_features,), "running_var": (self.num_features,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.gamma, self.beta = params["weight"], params["bias"]
        self.dgamma, self.dbeta = grads["weight"], grads["bias"]

    def bind_state(self, state: dict[str, Array]) -> None:
        self.running_mean, self.running_var = state["running_mean"], state["running_var"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        self.gamma[...], self.beta[...] = 1, 0

    def init_state(self) -> None:
        self.running_mean[...], self.running_var[...] = 0, 1

    def axes(self, x: Array) -> tuple[int, ...]:
        check(x.ndim in (2, 4) and x.shape[1] == self.num_features,
              f"layer {self.name} ({self!r}) expects (batch, {self.num_features}) or "
              f"(batch, {self.num_features}, H, W), got {x.shape}")
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def shaped(self, values: Array, ndim: int) -> Array:
        return values if ndim == 2 else values[:, None, None]

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple | None]:
        axes, ndim = self.axes(x), x.ndim
        if self.context is None:  # inference: running statistics
            scale = self.gamma / np.sqrt(self.running_var + self.eps)
            shift = self.beta - self.running_mean * scale
            return x * self.shaped(scale, ndim).astype(x.dtype) \
                + self.shaped(shift, ndim).astype(x.dtype), None
        square = np.multiply(x, x, out=ws.array("square", x.shape, x.dtype))
        count = x.size // self.num_features
        sums = np.concatenate([np.sum(x, axis=axes, dtype=np.float64),  # float64 sums
                               np.sum(square, axis=axes, dtype=np.float64), [count]])
        self.context.comm.Allreduce(sums)  # the global batch's sums
        total = max(sums[-1], 1.0)
        mean = sums[:self.num_features] / total
        var = np.maximum(sums[self.num_features:-1] / total - mean * mean, 0.0)
        invstd = 1.0 / np.sqrt(var + self.eps)
        xhat = np.subtract(x, self.shaped(mean, ndim).astype(x.dtype),
                           out=ws.array("xhat", x.shape, x.dtype))
        xhat *= self.shaped(invstd, ndim).astype(x.dtype)
        out = np.multiply(xhat, self.shaped(self.gamma, ndim), out=ws.array("out", x.shape,
                                                                           x.dtype))
        out += self.shaped(self.beta, ndim)
        unbiased = var * total / max(total - 1, 1.0)
        self.running_mean += self.momentum * (mean - self.running_mean)
        self.running_var += self.momentum * (unbiased - self.running_var)
        return out, (xhat, invstd, total)

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        xhat, invstd, total = cache
        axes, ndim, f = (0,) if dout.ndim == 2 else (0, 2, 3), dout.ndim, self.num_features
        product = np.multiply(dout, xhat, out=ws.array("product", dout.shape, dout.dtype))
        local = np.concatenate([np.sum(dout, axis=axes, dtype=np.float64),
                                np.sum(product, axis=axes, dtype=np.float64)])
        if accumulate:
            self.dbeta += local[:f]
            self.dgamma += local[f:]
        else:
            self.dbeta[...] = local[:f]
            self.dgamma[...] = local[f:]
        self.context.comm.Allreduce(local)  # the global batch's two sums
        # dx = gamma invstd / N (N dout - sum(dout) - xhat sum(dout xhat)), per feature
        scale = self.gamma * invstd / total
        dx = np.multiply(dout, self.shaped(scale * total, ndim).astype(dout.dtype),
                         out=ws.array("dx", dout.shape, dout.dtype))
        dx -= self.shaped(scale * local[:f], ndim).astype(dout.dtype)
        np.multiply(xhat, self.shaped(scale * local[f:], ndim).astype(dout.dtype), out=product)
        dx -= product
        return dx

    def __repr__(self) -> str:
        return f"BatchNorm({self.num_features})"
