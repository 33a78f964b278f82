"""Arrays reused from step to step, so a steady-state training step allocates nothing
activation- or parameter-sized: a kernel asks for a buffer by name and shape.

Image batches are (B, C, H, W) to every caller, but the convolution layers hold them in
memory as (C, H, W, B): their GEMMs then read and write whole planes with no transposes,
and pooling, normalisation and im2col loop over long contiguous runs (B images side by
side) instead of short image rows. `chwb` and `from_chwb` switch between the two views
of one buffer; `Workspace.like` gives elementwise layers an output laid out as their
input, so the order survives from one convolution to the next.
"""

from __future__ import annotations

import numpy as np


def chwb(x: np.ndarray) -> np.ndarray:
    """(B, C, H, W) -> the (C, H, W, B) view of the same values (no copy)."""
    return x.transpose(1, 2, 3, 0)


def from_chwb(x: np.ndarray) -> np.ndarray:
    """(C, H, W, B) -> the (B, C, H, W) view of the same values (no copy)."""
    return x.transpose(3, 0, 1, 2)


class Workspace:
    """Buffers of one kernel, kept per (name, shape, dtype): a few batch shapes at most."""

    def __init__(self) -> None:
        self.arrays: dict[tuple, np.ndarray] = {}

    def array(self, name: str, shape: tuple[int, ...], dtype: object) -> np.ndarray:
        """The buffer for (name, shape, dtype), allocated on first use."""
        key = (name, shape, np.dtype(dtype))
        found = self.arrays.get(key)
        if found is None:
            found = self.arrays[key] = np.empty(shape, dtype=dtype)
        return found

    def like(self, name: str, x: np.ndarray, dtype: object = None) -> np.ndarray:
        """A buffer shaped like x whose memory runs in x's axis order (a batch held as
        (C, H, W, B) gets one held so), allocated on first use."""
        dtype = np.dtype(dtype or x.dtype)
        key = (name, x.shape, dtype, x.strides)
        found = self.arrays.get(key)
        if found is None:
            found = self.arrays[key] = np.empty_like(x, dtype=dtype)
        return found

    def held(self, name: str, x: np.ndarray) -> np.ndarray:
        """x (B, C, H, W) as a C-contiguous (C, H, W, B) array: a view when x is held so,
        else a copy into the buffer `name` (reused, like every buffer here)."""
        view = chwb(x)
        if view.flags.c_contiguous:
            return view
        buffer = self.array(name, view.shape, x.dtype)
        np.copyto(buffer, view)
        return buffer


class NoWorkspace(Workspace):
    """Fresh arrays every call: for inference, whose outputs the caller keeps."""

    def array(self, name: str, shape: tuple[int, ...], dtype: object) -> np.ndarray:
        """A new array."""
        return np.empty(shape, dtype=dtype)

    def like(self, name: str, x: np.ndarray, dtype: object = None) -> np.ndarray:
        """A new array shaped and laid out like x."""
        return np.empty_like(x, dtype=dtype or x.dtype)


FRESH = NoWorkspace()
