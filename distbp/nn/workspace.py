"""Arrays reused from step to step, so a steady-state training step allocates nothing
activation- or parameter-sized: a kernel asks for a buffer by name and shape."""

from __future__ import annotations

import numpy as np


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


class NoWorkspace(Workspace):
    """Fresh arrays every call: for inference, whose outputs the caller keeps."""

    def array(self, name: str, shape: tuple[int, ...], dtype: object) -> np.ndarray:
        """A new array."""
        return np.empty(shape, dtype=dtype)


FRESH = NoWorkspace()
