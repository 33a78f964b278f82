"""The layer interface: forward(x, ws) -> (out, cache), backward(dout, cache, ...) -> dx.

Parameters and their gradients are views into the model's flat buffers; backward
writes parameter gradients into those views in place and never rebinds them. Outputs
go into workspace buffers (reused every step); activation backwards overwrite dout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from distbp.errors import check
from distbp.nn.workspace import FRESH, Workspace

Array = np.ndarray


def check_positive_ints(owner: str, **values: object) -> None:
    """One clear line unless every value is a positive integer."""
    for name, value in values.items():
        check(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 0,
              f"{owner}: {name} must be a positive integer, got {value!r}")


@dataclass
class StepContext:
    """What a training step tells layers that need more than their input: the
    communicator (BatchNorm's global statistics; None: this process alone), and the
    seed, the step and the global example index of each row (Dropout's masks). Layers
    see None instead of a context outside training: inference."""

    comm: Any = None  # anything with Allreduce(buffer) (distbp.dist.comm); None: serial
    seed: int = 0
    step: int = 0
    rows: np.ndarray | None = None  # global example indices of this rank's rows

    def rows_for(self, count: int) -> np.ndarray:
        """Global indices of the first `count` rows: (count,)."""
        return np.arange(count) if self.rows is None else self.rows[:count]

    def allreduce(self, buffer: Array) -> None:
        """Sum `buffer` over the ranks in place (nothing to do in one process)."""
        if self.comm is not None:
            self.comm.Allreduce(buffer)


class Layer:
    """Base class. A layer without parameters only implements forward/backward."""

    name: str = "?"
    context: StepContext | None = None  # set by Sequential.forward_train
    collective = False  # True: forward/backward communicate, every rank must run them
    transparent_to_init = False  # True: the layers before it initialise for what follows it

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of non-trained state (e.g. running statistics), kept in model.flat_state."""
        return {}

    def bind_state(self, state: dict[str, Array]) -> None:
        """Receive views into the model's flat state buffer."""

    def init_state(self) -> None:
        """Fill the bound state."""

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes of this layer's parameters, in buffer order."""
        return {}

    def bind(self, params: dict[str, Array], grads: dict[str, Array]) -> None:
        """Receive views into the flat parameter and gradient buffers."""

    def link(self, following: Layer) -> None:
        """Sequential introduces each layer to the next: a layer may hand its work to the
        next when the pair then computes the same values and gradients in fewer passes
        over memory (a ReLU before a MaxPool2D)."""

    def init_params(self, rng: np.random.Generator, nonlinearity: str) -> None:
        """Fill the bound parameters (deterministic given rng)."""

    def config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able: type(self)(**config) rebuilds the layer
        (a saved model's spec). "args" holds positional ones."""
        return {}

    def forward(self, x: Array, ws: Workspace = FRESH) -> tuple[Array, Any]:
        """x (B, ...) -> (out (B, ...), what backward needs); out may be a workspace buffer."""
        raise NotImplementedError

    def backward(self, dout: Array, cache: Any, accumulate: bool = False,
                 need_dx: bool = True, ws: Workspace = FRESH) -> Array | None:
        """dout like out -> dx like x, possibly in dout itself (None when need_dx is False);
        parameter gradients are written (or, with accumulate, added) into their views."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
