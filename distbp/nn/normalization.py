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
from distbp.nn.workspace import FRESH, Workspace, from_chwb

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

    def check_input(self, x: Array) -> None:
        """One clear line unless x is (B, F) or (B, F, H, W) with F = num_features."""
        check(x.ndim in (2, 4) and x.shape[1] == self.num_features,
              f"layer {self.name} ({self!r}) expects (batch, {self.num_features}) or "
              f"(batch, {self.num_features}, H, W), got {x.shape}")

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple | None]:
        """x (B, F) or (B, F, H, W) -> out of the same shape; the cache is (the input as
        feature rows, mean and invstd (F,), the global count). Training: one Allreduce of 2F+1
        sums."""
        self.check_input(x)
        values = feature_rows(x, ws)  # (F, the rest): per-feature work runs along rows
        if self.context is None:  # inference: running statistics
            scale = self.gamma / np.sqrt(self.running_var + self.eps)
            shift = self.beta - self.running_mean * scale
            out_rows, out = feature_buffer(ws, "out", x.shape, x.dtype)
            np.multiply(values, scale.astype(x.dtype)[:, None], out=out_rows)
            out_rows += shift.astype(x.dtype)[:, None]
            return out, None
        blocks = 1 if x.ndim == 2 else x.shape[2]  # one block per image row (of all B images)
        sums = np.concatenate([row_sums(values, blocks), row_dots(values, values, blocks),
                               [values.shape[1]]])
        self.context.allreduce(sums)  # the global batch's sums
        total = max(sums[-1], 1.0)
        mean = sums[:self.num_features] / total
        var = np.maximum(sums[self.num_features:-1] / total - mean * mean, 0.0)
        invstd = 1.0 / np.sqrt(var + self.eps)
        scale = self.gamma * invstd  # out = gamma (x - mean) invstd + beta = x scale + shift
        out_rows, out = feature_buffer(ws, "out", x.shape, x.dtype)
        np.multiply(values, scale.astype(x.dtype)[:, None], out=out_rows)
        out_rows += (self.beta - mean * scale).astype(x.dtype)[:, None]
        unbiased = var * total / max(total - 1, 1.0)
        self.running_mean += self.momentum * (mean - self.running_mean)
        self.running_var += self.momentum * (unbiased - self.running_var)
        return out, (values, mean, invstd, total)

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout like x -> dx like x; dgamma, dbeta (F,). One Allreduce of 2F sums."""
        values, mean, invstd, total = cache  # values: the input's feature rows
        f, grads = self.num_features, feature_rows(dout, ws, "dout")
        blocks = 1 if dout.ndim == 2 else dout.shape[2]
        summed = row_sums(grads, blocks)  # sum(dout), then sum(dout xhat) from sum(dout x)
        local = np.concatenate([summed, invstd * (row_dots(grads, values, blocks)
                                                  - mean * summed)])
        if accumulate:
            self.dbeta += local[:f]
            self.dgamma += local[f:]
        else:
            self.dbeta[...] = local[:f]
            self.dgamma[...] = local[f:]
        self.context.allreduce(local)  # the global batch's two sums
        # dx = gamma invstd / N (N dout - sum(dout) - xhat sum(dout xhat)), per feature,
        #    = a dout + b x + c
        a = self.gamma * invstd
        b = -a * invstd * local[f:] / total
        c = -a * local[:f] / total - b * mean
        dx_rows, dx = feature_buffer(ws, "dx", dout.shape, dout.dtype)
        np.multiply(grads, a.astype(dout.dtype)[:, None], out=dx_rows)
        product, _ = feature_buffer(ws, "product", dout.shape, dout.dtype)
        np.multiply(values, b.astype(dout.dtype)[:, None], out=product)
        product += c.astype(dout.dtype)[:, None]
        dx_rows += product
        return dx

    def __repr__(self) -> str:
        return f"BatchNorm({self.num_features})"


def feature_rows(x: Array, ws: Workspace, name: str = "x") -> Array:
    """(B, F) or (B, F, H, W) -> (F, the rest): one row per feature, a view when images
    are held (F, H, W, B) (else a copy into the buffer `name`)."""
    return x.T if x.ndim == 2 else ws.held(name, x).reshape(x.shape[1], -1)


def feature_buffer(ws: Workspace, name: str, shape: tuple[int, ...],
                   dtype: object) -> tuple[Array, Array]:
    """A buffer for values shaped `shape`: (its feature rows, its (B, F[, H, W]) view);
    images are held (F, H, W, B)."""
    if len(shape) == 2:
        buffer = ws.array(name, shape, dtype)
        return buffer.T, buffer
    batch, features, height, width = shape
    buffer = ws.array(name, (features, height, width, batch), dtype)
    return buffer.reshape(features, -1), from_chwb(buffer)


def row_sums(rows: Array, blocks: int) -> Array:
    """Per-row sums (F,) in float64 of (F, M) values: pairwise sums of `blocks` equal
    blocks of each row in the values' own precision (about 1e-7 relative in float32), then
    those in float64 (as accurate as float64 throughout to that, and twice as fast)."""
    return rows.reshape(len(rows), blocks, -1).sum(axis=2).sum(axis=1, dtype=np.float64)


def row_dots(rows: Array, others: Array, blocks: int) -> Array:
    """Per-row dot products (F,) in float64 of two (F, M) arrays, blocked as row_sums."""
    shape = (len(rows), blocks, -1)
    return np.einsum("fbm,fbm->fb", rows.reshape(shape), others.reshape(shape)).sum(
        axis=1, dtype=np.float64)
