"""Sequential model over one flat parameter buffer and one flat gradient buffer.

Every named parameter is a view into model.flat_params; its gradient is the view at
the same offsets in model.flat_grads. Optimizers and the allreduce walk the flat arrays.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from distbp.errors import check
from distbp.nn.init import nonlinearity_after
from distbp.nn.layer import Layer, StepContext
from distbp.nn.losses import Loss
from distbp.nn.workspace import Workspace

Array = np.ndarray
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class Parameter:
    """A named parameter: data and grad are views into the model's flat buffers."""

    name: str
    data: Array
    grad: Array


def resolve_dtype(dtype: object) -> np.dtype:
    """np.float32 or np.float64 (also as strings); anything else is a clear error."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    check(resolved is not None and resolved in DTYPES,
          f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


class Sequential:
    """Layers applied in order; parameters live in one contiguous buffer."""

    def __init__(self, layers: list[Layer], seed: int = 0,
                 dtype: object = np.float32) -> None:
        check(len(layers) > 0 and all(isinstance(layer, Layer) for layer in layers),
              "Sequential needs a non-empty list of distbp layers")
        self.layers = list(layers)
        self.dtype = resolve_dtype(dtype)
        self.seed = seed
        self.layout: list[tuple[str, int, tuple[int, ...]]] = []  # (name, offset, shape)
        offset = 0
        for index, layer in enumerate(self.layers):
            layer.name = str(index)
            for pname, shape in layer.param_shapes().items():
                self.layout.append((f"{index}.{pname}", offset, shape))
                offset += int(np.prod(shape))
        self.flat_params = np.zeros(offset, dtype=self.dtype)
        self.flat_grads = np.zeros(offset, dtype=self.dtype)
        self.state_layout: list[tuple[str, int, tuple[int, ...]]] = []
        state_offset = 0
        for index, layer in enumerate(self.layers):
            for sname, shape in layer.state_shapes().items():
                self.state_layout.append((f"{index}.{sname}", state_offset, shape))
                state_offset += int(np.prod(shape))
        self.flat_state = np.zeros(state_offset, dtype=np.float64)  # e.g. running statistics
        self.collective = any(layer.collective for layer in self.layers)
        for layer, following in zip(self.layers[:-1], self.layers[1:], strict=True):
            layer.link(following)
        self.first_trained = next((index for index, layer in enumerate(self.layers)
                                   if layer.param_shapes()), len(self.layers))
        self.task = "outputs"  # what predict returns: "probabilities" (classes) or "outputs"
        self.normalization = (0.0, 1.0)  # (mean, std) predict applies to raw inputs
        self.input_shape: tuple[int, ...] | None = None  # per example, when known (saved)
        self.workspaces = [Workspace() for _ in range(len(self.layers) + 1)]  # + the loss's
        self._bind()
        rng = np.random.default_rng(seed)
        for index, layer in enumerate(self.layers):
            layer.init_params(rng, nonlinearity_after(self.layers, index))
            layer.init_state()

    def _views(self, flat: Array, index: int) -> dict[str, Array]:
        prefix = f"{index}."
        return {name[len(prefix):]: flat[offset:offset + int(np.prod(shape))].reshape(shape)
                for name, offset, shape in self.layout if name.startswith(prefix)}

    def _bind(self) -> None:
        for index, layer in enumerate(self.layers):
            layer.bind(self._views(self.flat_params, index), self._views(self.flat_grads, index))
            prefix = f"{index}."
            layer.bind_state({name[len(prefix):]: self.flat_state[o:o + int(np.prod(shape))]
                              .reshape(shape) for name, o, shape in self.state_layout
                              if name.startswith(prefix)})

    def use_grad_buffer(self, buffer: Array, copy: bool = True) -> None:
        """Make `buffer` (1-D, same size and dtype) the gradient buffer."""
        self._use_buffer("flat_grads", buffer, copy)

    def use_param_buffer(self, buffer: Array, copy: bool = True) -> None:
        """Make `buffer` the parameter buffer (e.g. one copy shared by a node's ranks)."""
        self._use_buffer("flat_params", buffer, copy)

    def _use_buffer(self, attribute: str, buffer: Array, copy: bool) -> None:
        check(buffer.shape == self.flat_params.shape and buffer.dtype == self.dtype
              and buffer.flags.c_contiguous,
              f"buffer must be contiguous {self.dtype} of shape {self.flat_params.shape}, "
              f"got {buffer.dtype} {buffer.shape}")
        if copy:
            buffer[...] = getattr(self, attribute)
        setattr(self, attribute, buffer)
        self._bind()

    @property
    def num_parameters(self) -> int:
        """Length of the flat parameter buffer."""
        return self.flat_params.size

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """(name, Parameter) in buffer order, e.g. "0.weight", "0.bias", "2.weight"."""
        for name, offset, shape in self.layout:
            size = int(np.prod(shape))
            yield name, Parameter(name, self.flat_params[offset:offset + size].reshape(shape),
                                  self.flat_grads[offset:offset + size].reshape(shape))

    def describe(self) -> list[str]:
        """The architecture as strings, for fingerprints and logs."""
        return [repr(layer) for layer in self.layers] + [str(self.dtype)]

    def _input(self, x: Array) -> Array:
        x = np.asarray(x)
        check(x.ndim >= 2, f"model input must be at least 2-D (batch, features...), got shape "
                           f"{x.shape}")
        return x.astype(self.dtype, copy=False)  # the one explicit cast, at the boundary

    def forward(self, x: Array) -> Array:
        """Inference (Dropout off, BatchNorm's running statistics): x (B, ...) -> the last
        layer's output (B, out); keeps nothing for backward."""
        out = self._input(x)
        for layer in self.layers:
            layer.context = None
            out, _ = layer.forward(out)
        return out

    def forward_train(self, x: Array,
                      context: StepContext | None = None) -> tuple[Array, list[object]]:
        """Training forward: output and the caches backward needs, in buffers reused by the
        next call. `context` (default: serial, step 0) feeds Dropout and BatchNorm."""
        context = context or StepContext()
        for layer in self.layers:
            layer.context = context
        out, caches = self._input(x), []
        for layer, ws in zip(self.layers, self.workspaces, strict=False):
            out, cache = layer.forward(out, ws)
            caches.append(cache)
        return out, caches

    def backward(self, dout: Array, caches: list[object], accumulate: bool = False) -> None:
        """dout (B, out) -> writes (or, if accumulate, adds) all parameter gradients, from
        the last layer down to the first with parameters (nothing before it needs a
        gradient: it computes no input gradient, e.g. no col2im for a first Conv2D behind
        a Reshape). May overwrite dout."""
        first = self.first_trained
        for index in range(len(self.layers) - 1, first - 1, -1):
            dout = self.layers[index].backward(dout, caches[index], accumulate,
                                               need_dx=index > first, ws=self.workspaces[index])

    def loss_sum_and_backward(self, x: Array, y: Array, loss: Loss, scale: float,
                              accumulate: bool = False, context: StepContext | None = None,
                              mark: Callable[[str], None] = lambda phase: None) -> float:
        """Sum of per-example losses of x (B, ...) against y (B, ...); gradients of (that
        sum * scale) written (or, with accumulate, added) into flat_grads. mark(phase) is
        called after "forward" and "backward" (a profiler's hook)."""
        out, caches = self.forward_train(x, context)
        total, loss_cache = loss.forward(out, y, self.workspaces[-1])
        mark("forward")
        self.backward(loss.backward(loss_cache, scale), caches, accumulate)
        mark("backward")
        return total

    def loss_and_backward(self, x: Array, y: Array, loss: Loss) -> float:
        """Mean loss over the batch; fills every parameter gradient."""
        count = len(x)
        check(count > 0, "loss_and_backward needs a non-empty batch")
        return self.loss_sum_and_backward(x, y, loss, 1.0 / count) / count

    def predict(self, x: Array, batch_size: int = 1024) -> Array:
        """Raw inputs x (N, ...) -> (N, out): normalised as the model was trained, then
        class probabilities (a softmax) for a classifier, else the outputs."""
        check(batch_size > 0, f"predict: batch_size must be > 0, got {batch_size}")
        x = np.asarray(x)
        mean, std = self.normalization
        results = []
        for start in range(0, len(x), batch_size):
            rows = np.asarray(x[start:start + batch_size], dtype=self.dtype)
            out = self.forward((rows.reshape(len(rows), -1) - mean) / std)
            if self.task == "probabilities":
                out = np.exp(out - out.max(axis=1, keepdims=True))
                out /= out.sum(axis=1, keepdims=True)
            results.append(out)
        return np.concatenate(results) if results else np.zeros((0, 0), self.dtype)

    def zero_grad(self) -> None:
        """Set every gradient to zero."""
        self.flat_grads[...] = 0

    def copy(self, dtype: object = None) -> Sequential:
        """An independent copy (parameters cast to dtype, if given); gradients zeroed."""
        clone = copy.copy(self)
        clone.layers = copy.deepcopy(self.layers)
        clone.dtype = resolve_dtype(dtype) if dtype is not None else self.dtype
        clone.flat_params = self.flat_params.astype(clone.dtype)
        clone.flat_grads = np.zeros_like(clone.flat_params)
        clone.flat_state = self.flat_state.copy()
        clone.workspaces = [Workspace() for _ in clone.workspaces]
        clone._bind()
        return clone

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(map(repr, self.layers))}], dtype={self.dtype})"
