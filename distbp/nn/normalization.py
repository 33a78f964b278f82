"""Batch normalisation over the GLOBAL batch, so results never depend on the rank count.

Each rank's sums are allreduced (one small call per layer in forward, one in backward),
so the normalisation, the gradients and the running statistics are those of one process
on the whole batch. Per-rank statistics would make the model depend on how the batch
was split.
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


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

    def config(self) -> dict[str, float]:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum}

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
        """The axes the statistics run over: (0,) for (B, F), (0, 2, 3) for (B, F, H, W)."""
        check(x.ndim in (2, 4) and x.shape[1] == self.num_features,
              f"layer {self.name} ({self!r}) expects (batch, {self.num_features}) or "
              f"(batch, {self.num_features}, H, W), got {x.shape}")
        return (0,) if x.ndim == 2 else (0, 2, 3)

    def shaped(self, values: Array, ndim: int) -> Array:
        """Per-feature values (F,) shaped to broadcast against an input of `ndim` dims."""
        return values if ndim == 2 else values[:, None, None]

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple | None]:
        """x (B, F) or (B, F, H, W) -> out of the same shape; the cache is (xhat like x,
        invstd (F,), the global count). Training: one Allreduce of 2F+1 sums."""
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
        self.context.allreduce(sums)  # the global batch's sums
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

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout like x -> dx like x; dgamma, dbeta (F,). One Allreduce of 2F sums."""
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
        self.context.allreduce(local)  # the global batch's two sums
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
