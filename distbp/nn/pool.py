"""Pooling on image batches (B, C, H, W), held (C, H, W, B) (distbp.nn.workspace): max
over non-overlapping windows (strided views, no copies of the input; each window
position's values run B at a time), and the global average over each channel."""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace, chwb, from_chwb

Array = np.ndarray


class MaxPool2D(Layer):
    """Max over non-overlapping size x size windows (H and W divisible by size)."""

    transparent_to_init = True
    relu = False  # True: also max(out, 0), for the ReLU before it (see ReLU.link)

    def __init__(self, size: int = 2) -> None:
        check_positive_ints("MaxPool2D", size=size)
        self.size = int(size)

    def config(self) -> dict[str, int]:
        return {"size": self.size}

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, C, H, W) -> out (B, C, H/k, W/k), held (C, H/k, W/k, B); the cache is
        (which window position won, uint8 like out held so, the input shape)."""
        k = self.size
        check(x.ndim == 4 and x.shape[2] % k == 0 and x.shape[3] % k == 0,
              f"layer {self.name} ({self!r}) needs (batch, C, H, W) with H and W divisible "
              f"by {k}, got {x.shape}")
        b, c, h, w = x.shape
        source = chwb(x)  # (C, H, W, B): a window position's values run B at a time
        out = ws.array("out", (c, h // k, w // k, b), x.dtype)
        winner = ws.array("winner", out.shape, np.uint8)  # which window position won
        greater = ws.array("greater", out.shape, np.uint8)
        np.copyto(out, source[:, 0::k, 0::k])
        winner[...] = 0
        for position in range(1, k * k):  # strided views: no copies of the input
            view = source[:, position // k::k, position % k::k]
            np.greater(view, out, out=greater)  # strictly: the first maximum wins
            greater *= position  # the last position to beat the maximum so far won, so
            np.maximum(winner, greater, out=winner)  # the largest (no branches)
            np.maximum(out, view, out=out)
        if self.relu:  # windows whose maximum is <= 0 pass no gradient: no position won
            np.less_equal(out, 0, out=greater)
            greater *= 255
            np.maximum(winner, greater, out=winner)
            np.maximum(out, 0, out=out)
        return from_chwb(out), (winner, x.shape)

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, C, H/k, W/k) -> dx (B, C, H, W), held (C, H, W, B): each gradient to its
        window's winner."""
        winner, (b, c, h, w) = cache
        k, grads = self.size, chwb(dout)
        dx = ws.array("dx", (c, h, w, b), dout.dtype)
        mask = ws.array("mask", winner.shape, bool)
        for position in range(k * k):
            np.equal(winner, position, out=mask)
            np.multiply(grads, mask, out=dx[:, position // k::k, position % k::k])
        return from_chwb(dx)

    def __repr__(self) -> str:
        return f"MaxPool2D({self.size})"


class GlobalAvgPool2D(Layer):
    """Mean over H and W: (B, C, H, W) -> (B, C)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, C, H, W) -> out (B, C); the cache is the input shape."""
        check(x.ndim == 4, f"layer {self.name} (GlobalAvgPool2D) needs (batch, C, H, W), "
                           f"got {x.shape}")
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, C) -> dx (B, C, H, W), each pixel dout / (H W)."""
        b, c, h, w = cache
        dx = ws.array("dx", (c, h, w, b), dout.dtype)  # held (C, H, W, B)
        np.copyto(dx, (dout.T / (h * w))[:, None, None, :])
        return from_chwb(dx)
