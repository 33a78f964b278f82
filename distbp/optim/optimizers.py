"""Optimizers over the flat buffers: each step is a few vectorised lines.

Update rules follow torch.optim's documented SGD (dampening 0), Adam and AdamW. A step
may cover one contiguous part of the buffers (ranks sharing memory each update theirs).
"""

from __future__ import annotations

import math

import numpy as np

from distbp.errors import check
from distbp.nn.sequential import Sequential

WHOLE = slice(None)


def check_nonnegative(owner: str, **values: float) -> None:
    """One clear line unless every value is a finite number >= 0."""
    for name, value in values.items():
        check(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
              f"{owner}: {name} must be a finite number >= 0, got {value!r}")


CHUNK = 1 << 18  # values per update() call: 1 MB of float32, so its passes stay in the cache


class Optimizer:
    """Base: the model, the learning rate, state buffers (named arrays) and a scratch."""

    def __init__(self, model: Sequential, lr: float) -> None:
        check_nonnegative(type(self).__name__, lr=lr)
        self.model = model
        self.lr = float(lr)
        self.steps = 0
        self.buffers: dict[str, np.ndarray] = {}  # state, laid out like the parameters
        size = min(len(model.flat_params), CHUNK)  # private work space for one chunk
        self.scratch = np.empty(size, dtype=model.flat_params.dtype)
        self.scratch2 = np.empty_like(self.scratch) if self.needs_second_scratch() else None

    def needs_second_scratch(self) -> bool:
        """Whether update() needs a second scratch buffer."""
        return False

    def settings(self) -> dict[str, object]:
        """Hyper-parameters, for configuration fingerprints."""
        return {key: value for key, value in vars(self).items()
                if isinstance(value, (int, float, bool)) and key != "steps"}

    def state(self) -> dict[str, np.ndarray]:
        """Arrays of optimizer state (for checkpoints and shared memory)."""
        return self.buffers

    def use_state_buffer(self, name: str, buffer: np.ndarray, copy: bool = True) -> None:
        """Keep state `name` in `buffer` (same shape and dtype), e.g. shared memory."""
        check(buffer.shape == self.buffers[name].shape and buffer.dtype == self.buffers[name].dtype,
              f"state buffer {name} must be {self.buffers[name].dtype} "
              f"{self.buffers[name].shape}")
        if copy:
            buffer[...] = self.buffers[name]
        self.buffers[name] = buffer

    def step(self, part: slice = WHOLE, grad: np.ndarray | None = None) -> None:
        """Update the parameters in `part` (all by default) from the gradients (or from
        `grad`, laid out like that part), CHUNK values at a time: the update's several
        element-wise passes then run in the cache, with the same results."""
        params = self.model.flat_params[part]
        grad = self.model.flat_grads[part] if grad is None else grad
        state = {name: buffer[part] for name, buffer in self.buffers.items()}
        for start in range(0, len(params), CHUNK):
            chunk = slice(start, start + CHUNK)
            size = len(params[chunk])
            scratches = (self.scratch[:size],
                         None if self.scratch2 is None else self.scratch2[:size])
            self.update(params[chunk], grad[chunk], scratches,
                        {name: buffer[chunk] for name, buffer in state.items()})
        self.steps += 1

    def update(self, params, grad, scratch, state) -> None:
        """Update params in place from grad (views of one part), with scratch and state views."""
        raise NotImplementedError


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and L2 weight decay, as torch.optim.SGD."""

    def __init__(self, model: Sequential, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        check_nonnegative("SGD", momentum=momentum, weight_decay=weight_decay)
        check(not nesterov or momentum > 0, "SGD: nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        super().__init__(model, lr)
        if momentum:
            self.buffers["momentum_buffer"] = np.zeros_like(model.flat_params)

    def needs_second_scratch(self) -> bool:
        return self.nesterov

    def update(self, params, grad, scratches, state) -> None:
        scratch, scratch2 = scratches
        if self.weight_decay:
            np.multiply(params, self.weight_decay, out=scratch)
            scratch += grad
            grad = scratch  # g = grad + wd * p
        if self.momentum:
            buf = state["momentum_buffer"]
            if self.steps == 0:
                buf[...] = grad
            else:
                buf *= self.momentum
                buf += grad  # buf = momentum * buf + g
            if self.nesterov:
                np.multiply(buf, self.momentum, out=scratch2)
                scratch2 += grad
                grad = scratch2  # g + momentum * buf
            else:
                grad = buf
        np.multiply(grad, self.lr, out=scratch)
        params -= scratch


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam."""

    decoupled = False

    def __init__(self, model: Sequential, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        check_nonnegative(type(self).__name__, eps=eps, weight_decay=weight_decay)
        check(len(betas) == 2 and all(0 <= b < 1 for b in betas),
              f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas!r}")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        super().__init__(model, lr)
        self.buffers["exp_avg"] = np.zeros_like(model.flat_params)
        self.buffers["exp_avg_sq"] = np.zeros_like(model.flat_params)

    def needs_second_scratch(self) -> bool:
        return bool(self.weight_decay) and not self.decoupled

    def update(self, params, grad, scratches, state) -> None:
        scratch, scratch2 = scratches
        m, v, t = state["exp_avg"], state["exp_avg_sq"], self.steps + 1
        if self.weight_decay and self.decoupled:
            params *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            np.multiply(params, self.weight_decay, out=scratch2)
            scratch2 += grad
            grad = scratch2  # L2: g + wd * p
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        v += scratch
        bias_correction1 = 1 - self.beta1 ** t
        bias_correction2_sqrt = math.sqrt(1 - self.beta2 ** t)
        np.sqrt(v, out=scratch)
        scratch /= bias_correction2_sqrt
        scratch += self.eps  # denom
        np.divide(m, scratch, out=scratch)
        scratch *= self.lr / bias_correction1
        params -= scratch


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    decoupled = True

    def __init__(self, model: Sequential, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2) -> None:
        super().__init__(model, lr, betas, eps, weight_decay)
