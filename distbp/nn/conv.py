"""2-D convolution on image batches (B, C, H, W), held in memory as (C, H, W, B).

Conv2D copies input patches into one matrix (im2col: one strided copy per kernel
position, k x k of them, each a block of whole rows of B images) and does one GEMM, the
bias folded in as a row of ones; the output comes out of the GEMM already (C, H, W, B).
Its backward does two GEMMs (the weight and bias gradients again as one) and adds the
patch gradients back with one strided add per kernel position (col2im), never a loop
over pixels or a transpose.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from distbp.errors import check
from distbp.nn.init import init_weight
from distbp.nn.layer import Layer, check_positive_ints
from distbp.nn.workspace import FRESH, Workspace, chwb, from_chwb

Array = np.ndarray


def span(offset: int, out_size: int, size: int, stride: int, padding: int) -> tuple[slice,
                                                                                      slice]:
    """Kernel offset -> (the outputs whose input pixel lies inside the image, the input
    pixels they read): a slice of outputs and a strided slice of inputs, equally long."""
    low = max(0, -(-(padding - offset) // stride))
    high = min(out_size, (size - 1 + padding - offset) // stride + 1)
    high = max(high, low)
    start = low * stride + offset - padding
    return slice(low, high), slice(start, start + stride * (high - low), stride)


BLOCK_ROWS, BLOCK = 64, 2048  # GEMMs over patches of fewer rows run 2048 columns at a time


def blocks(cols: Array) -> list[slice]:
    """Column blocks of the patch matrix for its GEMMs: one block, or, when it has fewer
    than BLOCK_ROWS rows (a first conv on 1-3 channels: its GEMMs are memory-bound), blocks
    of BLOCK columns whose operands stay in the cache (about 2x faster with OpenBLAS)."""
    count = cols.shape[1]
    if len(cols) >= BLOCK_ROWS:
        return [slice(0, count)]
    return [slice(start, start + BLOCK) for start in range(0, max(count, 1), BLOCK)]  # >= 1


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

    def shifts(self, out_h: int, out_w: int, height: int, width: int) -> Iterator[tuple]:
        """Per kernel position (i, j): (i, j, output rows, output columns, input rows, input
        columns), the slices that pair each output pixel with its input pixel."""
        k, s, p = self.kernel_size, self.stride, self.padding
        for i in range(k):
            out_rows, rows = span(i, out_h, height, s, p)
            for j in range(k):
                out_cols, cols = span(j, out_w, width, s, p)
                yield i, j, out_rows, out_cols, rows, cols

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, tuple]:
        """x (B, C, H, W) -> out (B, OC, OH, OW), held as (OC, OH, OW, B); the cache is
        (cols (C k k + 1, OH OW B), the input shape)."""
        check(x.ndim == 4 and x.shape[1] == self.in_channels,
              f"layer {self.name} ({self!r}) expects input (batch, {self.in_channels}, H, W), "
              f"got {x.shape}")
        batch, channels, height, width = x.shape
        out_h, out_w = self.output_size(height), self.output_size(width)
        check(out_h > 0 and out_w > 0, f"layer {self.name} ({self!r}): input {height}x{width} "
                                       "is smaller than the kernel")
        k, oc, rows = self.kernel_size, self.out_channels, channels * self.kernel_size ** 2
        source = chwb(x)
        cols = ws.array("cols", (rows + 1, out_h * out_w * batch), x.dtype)  # + a row of ones
        patches = cols[:rows].reshape(channels, k, k, out_h, out_w, batch)
        for i, j, out_rows, out_cols, in_rows, in_cols in self.shifts(out_h, out_w, height,
                                                                      width):
            plane = patches[:, i, j]  # (C, OH, OW, B): zero where the kernel sees padding
            plane[:, :out_rows.start], plane[:, out_rows.stop:] = 0, 0
            plane[:, :, :out_cols.start], plane[:, :, out_cols.stop:] = 0, 0
            plane[:, out_rows, out_cols] = source[:, in_rows, in_cols]
        cols[rows] = 1
        weights = ws.array("weights", (oc, rows + 1), x.dtype)  # [W | b]
        weights[:, :rows], weights[:, rows] = self.W.reshape(oc, rows), self.b
        flat = ws.array("flat", (oc, cols.shape[1]), x.dtype)
        for block in blocks(cols):
            np.matmul(weights, cols[:, block], out=flat[:, block])
        return from_chwb(flat.reshape(oc, out_h, out_w, batch)), (cols, x.shape)

    def backward(self, dout: Array, cache: tuple, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        """dout (B, OC, OH, OW) -> dx (B, C, H, W), held as (C, H, W, B); dW, db."""
        cols, shape = cache
        batch, channels, height, width = shape
        out_h, out_w = dout.shape[2:]
        k, oc, rows = self.kernel_size, self.out_channels, channels * self.kernel_size ** 2
        dflat = ws.held("dout", dout).reshape(oc, -1)  # a view when dout is held so
        dweights = ws.array("dweights", (oc, rows + 1), dout.dtype)  # [dW | db]
        partial = ws.array("partial", dweights.shape, dout.dtype)  # one column block's
        for index, block in enumerate(blocks(cols)):
            np.matmul(dflat[:, block], cols[:, block].T, out=partial if index else dweights)
            if index:
                dweights += partial
        if accumulate:
            self.dW += dweights[:, :rows].reshape(self.dW.shape)
            self.db += dweights[:, rows]
        else:
            self.dW[...], self.db[...] = dweights[:, :rows].reshape(self.dW.shape), \
                dweights[:, rows]
        if not need_dx:
            return None
        dcols = np.matmul(self.W.reshape(oc, rows).T, dflat,
                          out=ws.array("dcols", (rows, dflat.shape[1]), dout.dtype))
        dcols = dcols.reshape(channels, k, k, out_h, out_w, batch)
        dx = ws.array("dx", (channels, height, width, batch), dout.dtype)
        shifts = sorted(self.shifts(out_h, out_w, height, width),  # one covering dx first
                        key=lambda shift: not covers(shift, height, width))
        copy_first = covers(shifts[0], height, width)  # then it is copied, no zeroing
        if not copy_first:
            dx[...] = 0
        for index, (i, j, out_rows, out_cols, in_rows, in_cols) in enumerate(shifts):
            patch = dcols[:, i, j, out_rows, out_cols]  # col2im: one strided add per position
            if index == 0 and copy_first:
                np.copyto(dx, patch)
            else:
                dx[:, in_rows, in_cols] += patch
        return from_chwb(dx)

    def __repr__(self) -> str:
        return (f"Conv2D({self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
                f", stride={self.stride}, padding={self.padding})")


def covers(shift: tuple, height: int, width: int) -> bool:
    """Whether a kernel position's input slices are every pixel of the image."""
    rows, cols = shift[4], shift[5]
    return (rows.step == 1 and rows.stop - rows.start == height
            and cols.step == 1 and cols.stop - cols.start == width)
