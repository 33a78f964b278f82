"""2-D convolution on NCHW tensors (batch, channels, height, width).

Conv2D gathers input patches with stride tricks into one matrix (im2col) and does one
GEMM; its backward does two GEMMs and scatters the patch gradients back with one strided
add per kernel position (KH x KW of them, never a loop over pixels).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from distbp.errors import check
from distbp.nn.init import init_weight
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


class Conv2D(Layer):
    """2-D convolution: weight (out_channels, in_channels, k, k), bias (out_channels,)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 stride: int = 1, padding: int = 0) -> None:
        check_positive_ints("Conv2D", in_channels=in_channels, out_channels=out_channels,
                     kernel_size=kernel_size, stride=stride)
        check(isinstance(padding, int) and padding >= 0,
              f"Conv2D: padding must be an integer >= 0, got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)

    def config(self) -> dict[str, int]:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        k = self.kernel_size
        return {"weight": (self.out_channels, self.in_channels, k, k),
                "bias": (self.out_channels,)}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        self.W, self.b = params["weight"], params["bias"]
        self.dW, self.db = grads["weight"], grads["bias"]

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        window = self.kernel_size ** 2
        init_weight(self.W, rng, self.in_channels * window, self.out_channels * window,
                    nonlinearity)
        self.b[...] = 0

    def output_size(self, size: int) -> int:
        """Output height (or width) for an input height (or width) of `size`."""
        return (size + 2 * self.padding - self.kernel_size) // self.stride + 1

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, C, H, W) -> out (B, OC, OH, OW); the cache is (cols (C k k, B OH OW),
        the input shape)."""
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
        """dout (B, OC, OH, OW) -> dx (B, C, H, W); dW (OC, C, k, k), db (OC,)."""
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
