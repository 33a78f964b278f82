"""Losses as kernels: forward(out, y) -> (sum of per-example losses, cache),
backward(cache, scale) -> scale * d(sum)/d(out).

Returning the sum (not the mean) lets data-parallel ranks scale by the global batch.
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


class Loss:
    """Base class for losses."""

    has_accuracy = False  # whether correct() counts anything

    def forward(self, out: Array, y: Array, ws: Workspace = FRESH) -> tuple[float, object]:
        """out (B, K), targets y -> (sum over the B examples of their losses, cache)."""
        raise NotImplementedError

    def backward(self, cache: object, scale: float) -> Array:
        """cache -> scale * d(loss sum)/d(out): (B, K), possibly in a buffer of the cache."""
        raise NotImplementedError

    def correct(self, out: Array, y: Array) -> int | None:
        """Number of correct predictions, or None where accuracy has no meaning."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SoftmaxCrossEntropy(Loss):
    """Softmax and cross-entropy fused: log-sum-exp, stable for any finite logits."""

    has_accuracy = True

    def forward(self, out: Array, y: Array,
                ws: Workspace = FRESH) -> tuple[float, tuple[Array, Array]]:
        """logits (B, C), labels y (B,) int in [0, C) -> (sum of -log softmax[y], cache:
        the probabilities (B, C) and y)."""
        y = check_labels(out, y)
        shifted = np.subtract(out, out.max(axis=1, keepdims=True),
                              out=ws.array("shifted", out.shape, out.dtype))  # max entry 0
        exp = np.exp(shifted, out=ws.array("exp", out.shape, out.dtype))
        sum_exp = exp.sum(axis=1, keepdims=True)  # (B, 1), >= 1: log never sees 0
        rows = np.arange(len(y))
        losses = np.log(sum_exp[:, 0]) - shifted[rows, y]  # (B,)
        exp /= sum_exp  # softmax probabilities, reused by backward
        return float(losses.sum(dtype=np.float64)), (exp, y)

    def backward(self, cache: tuple[Array, Array], scale: float) -> Array:
        """-> scale (softmax - onehot(y)): (B, C), in the cache's probabilities."""
        probs, y = cache
        dout = probs  # cache is used once: overwrite it in place
        dout[np.arange(len(y)), y] -= 1
        dout *= scale
        return dout

    def correct(self, out: Array, y: Array) -> int:
        """Examples whose largest logit (B, C) is their label (B,)."""
        y = check_labels(out, y)
        return int(np.count_nonzero(out.argmax(axis=1) == y))


class MSE(Loss):
    """Mean squared error: per example, the mean over outputs of (out - y)^2.

    The batch mean therefore equals torch.nn.MSELoss() (mean over all elements).
    """

    def forward(self, out: Array, y: Array,
                ws: Workspace = FRESH) -> tuple[float, tuple[Array, int]]:
        """out (B, K), targets y (B, K) -> (sum over examples of mean((out - y)^2), cache:
        the difference (B, K) and K)."""
        y = np.asarray(y)
        check(out.ndim == 2 and y.shape == out.shape,
              f"MSE: targets must have the output's shape {out.shape}, got {y.shape}")
        check(np.issubdtype(y.dtype, np.floating) or np.issubdtype(y.dtype, np.integer),
              f"MSE: targets must be numeric, got dtype {y.dtype}")
        diff = np.subtract(out, y.astype(out.dtype, copy=False),
                           out=ws.array("diff", out.shape, out.dtype))
        width = out.shape[1]
        total = float(np.einsum("ij,ij->", diff, diff, dtype=np.float64)) / width
        return total, (diff, width)

    def backward(self, cache: tuple[Array, int], scale: float) -> Array:
        """-> scale 2 (out - y) / K: (B, K), in the cache's difference."""
        diff, width = cache
        diff *= 2 * scale / width
        return diff


def check_labels(out: Array, y: Array) -> Array:
    """Validate integer class labels for logits `out` of shape (B, C)."""
    y = np.asarray(y)
    check(out.ndim == 2, f"SoftmaxCrossEntropy: logits must be (batch, classes), "
                         f"got shape {out.shape}")
    check(np.issubdtype(y.dtype, np.integer),
          f"SoftmaxCrossEntropy: labels must be integers, got dtype {y.dtype}")
    check(y.shape == (out.shape[0],),
          f"SoftmaxCrossEntropy: expected {out.shape[0]} labels of shape "
          f"({out.shape[0]},), got shape {y.shape}")
    if y.size:
        low, high = int(y.min()), int(y.max())
        check(low >= 0 and high < out.shape[1],
              f"SoftmaxCrossEntropy: labels must be in [0, {out.shape[1]}), "
              f"got values in [{low}, {high}]")
    return y
