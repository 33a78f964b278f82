"""Dropout whose masks never depend on the rank count.

The mask comes from a counter-based hash of (seed, step, layer, global example index,
feature): the same example gets the same mask whichever rank holds it.
"""

from __future__ import annotations

import numpy as np

from distbp.errors import check
from distbp.nn.layer import Layer
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


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

    def config(self) -> dict[str, float]:
        return {"p": self.p}

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Array | None]:
        """x (B, ...) -> out (B, ...); the cache is the scaled mask (None: inference)."""
        context = self.context
        if context is None or not self.p:  # inference
            return x, None
        rows = context.rows_for(len(x))
        keep = uniform_hash(context.seed, context.step, int(self.name), rows,
                            int(np.prod(x.shape[1:]))) >= self.p
        mask = (keep / (1 - self.p)).astype(x.dtype).reshape(x.shape)
        return x * mask, mask

    def backward(self, dout: Array, cache: Array | None, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array:
        """dout (B, ...) -> dx (B, ...), in dout: dout x mask."""
        return dout if cache is None else np.multiply(dout, cache, out=dout)

    def __repr__(self) -> str:
        return f"Dropout({self.p})"
