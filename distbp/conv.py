"""Convolutional layers on NCHW tensors (batch, channels, height, width).

Conv2D gathers input patches with stride tricks into one matrix (im2col) and does one
GEMM; its backward does two GEMMs and scatters the patch gradients back with one strided
add per kernel position (KH x KW of them, never a loop over pixels).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from distbp.errors import check
from distbp.layers import Layer
from distbp.workspace import FRESH, Workspace

Array = np.ndarray


def positive_int(owner: str, **values: object) -> None:
    for name, value in values.items():
        check(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0,
              f"{owner}: {name} must be a positive integer, got {value!r}")


class Conv2D(Layer):
    """2-D convolution: weight (out_channels, in_channels, k, k), bias (out_channels,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 0) -> None:
        positive_int("Conv2D", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel_size, stride=stride)
        check(isinstance(padding, int) and padding >= 0,
              f"Conv2D: padding must be an integer >= 0, got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        k = self.kernel_size
        return {"weight": (self.out_channels, self.in_channels, k, k),
                "bias": (self.out_channels,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.W, self.b = params["weight"], params["bias"]
        self.dW, self.db = grads["weight"], grads["bias"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        fan_in = self.in_channels * self.kernel_size ** 2
        fan_out = self.out_channels * self.kernel_size ** 2
        if nonlinearity in ("relu", "leaky_relu"):
            values = rng.standard_normal(self.W.shape) * np.sqrt(2.0 / fan_in)
        else:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            values = rng.uniform(-limit, limit, self.W.shape)
        self.W[...] = values
        self.b[...] = 0

    def output_size(self, size: int) -> int:
        return (size + 2 * self.padding - self.kernel_size) // self.stride + 1

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        check(x.ndim == 4 and x.shape[1] == self.in_channels,
              f"layer {self.name} ({self!r}) expects input (batch, {self.in_channels}, H, W), "
              f"got {x.shape}")
        batch, _, height, width = x.shape
        out_h, out_w = self.output_size(height), self.output_size(width)
        check(out_h > 0 and out_w > 0, f"layer {self.name} ({self!r}): input {height}x{width} "
                                       "is smaller than the kernel")
        p, s, k = self.padding, self.stride, self.kernel_size
        channels, out_channels = self.in_channels, self.out_channels
        padded = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x
        windows = sliding_window_view(padded, (k, k), axis=(2, 3))[:, :, ::s, ::s]
        windows = windows[:, :, :out_h, :out_w]  # (B, C, OH, OW, k, k), a view
        # im2col, laid out (C, k, k, B, OH, OW): each copied plane runs along the image rows
        cols = ws.array("cols", (channels, k, k, batch, out_h, out_w), x.dtype)
        np.copyto(cols, windows.transpose(1, 4, 5, 0, 2, 3))
        cols = cols.reshape(channels * k * k, batch * out_h * out_w)
        flat = np.matmul(self.W.reshape(out_channels, -1), cols,  # the one GEMM
                         out=ws.array("flat", (out_channels, cols.shape[1]), x.dtype))
        flat += self.b[:, None]
        out = ws.array("out", (batch, out_channels, out_h, out_w), x.dtype)
        np.copyto(out, flat.reshape(out_channels, batch, out_h, out_w).transpose(1, 0, 2, 3))
        return out, (cols, x.shape)

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        cols, shape = cache  # cols: (C k k, B OH OW)
        batch, channels, height, width = shape
        out_h, out_w = dout.shape[2:]
        oc, k, s, p = self.out_channels, self.kernel_size, self.stride, self.padding
        dflat = ws.array("dflat", (oc, batch, out_h, out_w), dout.dtype)
        np.copyto(dflat, dout.transpose(1, 0, 2, 3))
        dflat = dflat.reshape(oc, batch * out_h * out_w)
        dW = self.dW.reshape(oc, -1)
        if accumulate:
            dW += dflat @ cols.T
            self.db += dflat.sum(axis=1)
        else:
            np.matmul(dflat, cols.T, out=dW)
            np.sum(dflat, axis=1, out=self.db)
        if not need_dx:
            return None
        dcols = np.matmul(self.W.reshape(oc, -1).T, dflat,
                          out=ws.array("dcols", cols.shape, dout.dtype))
        dcols = dcols.reshape(channels, k, k, batch, out_h, out_w)
        dpadded = ws.array("dpadded", (batch, channels, height + 2 * p, width + 2 * p),
                           dout.dtype)
        dpadded[...] = 0
        for i in range(k):  # col2im: one strided add per kernel position
            for j in range(k):
                dpadded[:, :, i:i + s * out_h:s, j:j + s * out_w:s] += \
                    dcols[:, i, j].transpose(1, 0, 2, 3)
        return dpadded[:, :, p:p + height, p:p + width] if p else dpadded

    def __repr__(self) -> str:
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
                f", stride={self.stride}, padding={self.padding})")


class MaxPool2D(Layer):
    """Max over non-overlapping size x size windows (H and W divisible by size)."""

    transparent_to_init = True

    def __init__(self, size: int = 2) -> None:
        positive_int("MaxPool2D", size=size)
        self.size = int(size)

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        k = self.size
        check(x.ndim == 4 and x.shape[2] % k == 0 and x.shape[3] % k == 0,
              f"layer {self.name} ({self!r}) needs (batch, C, H, W) with H and W divisible "
              f"by {k}, got {x.shape}")
        b, c, h, w = x.shape
        out = ws.array("out", (b, c, h // k, w // k), x.dtype)
        winner = ws.array("winner", out.shape, np.uint8)  # which window position won
        greater = ws.array("greater", out.shape, bool)
        np.copyto(out, x[:, :, 0::k, 0::k])
        winner[...] = 0
        for position in range(1, k * k):  # strided views: no copies of the input
            view = x[:, :, position // k::k, position % k::k]
            np.greater(view, out, out=greater)  # strictly: the first maximum wins
            np.copyto(winner, position, where=greater)
            np.maximum(out, view, out=out)
        return out, (winner, x.shape)

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        winner, shape = cache
        k = self.size
        dx = ws.array("dx", shape, dout.dtype)
        mask = ws.array("mask", winner.shape, bool)
        for position in range(k * k):
            np.equal(winner, position, out=mask)
            np.multiply(dout, mask, out=dx[:, :, position // k::k, position % k::k])
        return dx

    def __repr__(self) -> str:
        return f"MaxPool2D({self.size})"


class GlobalAvgPool2D(Layer):
    """Mean over H and W: (B, C, H, W) -> (B, C)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        check(x.ndim == 4, f"layer {self.name} (GlobalAvgPool2D) needs (batch, C, H, W), "
                           f"got {x.shape}")
        return x.mean(axis=(2, 3)), x.shape

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        b, c, h, w = cache
        return np.broadcast_to((dout / (h * w))[:, :, None, None], cache).copy()


class Flatten(Layer):
    """(B, ...) -> (B, features)."""

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        return x.reshape(len(x), int(np.prod(x.shape[1:]))), x.shape

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        return dout.reshape(cache)


class Reshape(Layer):
    """(B, features) -> (B, *shape), e.g. flat image rows to (B, 1, 28, 28)."""

    def __init__(self, *shape: int) -> None:
        positive_int("Reshape", **{f"dimension {i}": d for i, d in enumerate(shape)})
        self.shape = tuple(int(d) for d in shape)

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        check(int(np.prod(x.shape[1:])) == int(np.prod(self.shape)),
              f"layer {self.name} ({self!r}) cannot reshape {x.shape[1:]} to {self.shape}")
        return x.reshape(len(x), *self.shape), x.shape

    def backward(self, dout, cache, accumulate=False, need_dx=True, ws=FRESH):
        return dout.reshape(cache)

    def __repr__(self) -> str:
        return f"Reshape{self.shape}"
