"""Optimizers over the flat buffers: each step is a few vectorised lines.

Update rules follow torch.optim's documented SGD (dampening 0), Adam and AdamW.
"""

from __future__ import annotations

import math

import numpy as np

from distbp.errors import check
from distbp.model import Sequential


def check_nonnegative(owner: str, **values: float) -> None:
    for name, value in values.items():
        check(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
              f"{owner}: {name} must be a finite number >= 0, got {value!r}")


class Optimizer:
    """Base: holds the model, the learning rate and a scratch buffer."""

    def __init__(self, model: Sequential, lr: float) -> None:
        check_nonnegative(type(self).__name__, lr=lr)
        self.model = model
        self.lr = float(lr)
        self.steps = 0
        self.scratch = np.empty_like(model.flat_params)

    def settings(self) -> dict[str, object]:
        """Hyper-parameters, for configuration fingerprints."""
        return {key: value for key, value in vars(self).items()
                if isinstance(value, (int, float, bool)) and key != "steps"}

    def state(self) -> dict[str, np.ndarray]:
        """Arrays of optimizer state (for checkpoints and comparisons)."""
        return {}

    def step(self) -> None:
        raise NotImplementedError


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum and L2 weight decay, as torch.optim.SGD."""

    def __init__(self, model: Sequential, lr: float, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0) -> None:
        super().__init__(model, lr)
        check_nonnegative("SGD", momentum=momentum, weight_decay=weight_decay)
        check(not nesterov or momentum > 0, "SGD: nesterov needs momentum > 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.buf = np.zeros_like(model.flat_params) if momentum else None

    def state(self) -> dict[str, np.ndarray]:
        return {} if self.buf is None else {"momentum_buffer": self.buf}

    def step(self) -> None:
        params, grad, scratch = self.model.flat_params, self.model.flat_grads, self.scratch
        if self.weight_decay:
            np.multiply(params, self.weight_decay, out=scratch)
            scratch += grad
            grad = scratch  # g = grad + wd * p
        if self.buf is not None:
            if self.steps == 0:
                self.buf[...] = grad
            else:
                self.buf *= self.momentum
                self.buf += grad  # buf = momentum * buf + g
            grad = grad + self.momentum * self.buf if self.nesterov else self.buf
        np.multiply(grad, self.lr, out=scratch)
        params -= scratch
        self.steps += 1


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam."""

    decoupled = False

    def __init__(self, model: Sequential, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(model, lr)
        check_nonnegative(type(self).__name__, eps=eps, weight_decay=weight_decay)
        check(len(betas) == 2 and all(0 <= b < 1 for b in betas),
              f"{type(self).__name__}: betas must be two numbers in [0, 1), got {betas!r}")
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps, self.weight_decay = float(eps), float(weight_decay)
        self.exp_avg = np.zeros_like(model.flat_params)
        self.exp_avg_sq = np.zeros_like(model.flat_params)

    def state(self) -> dict[str, np.ndarray]:
        return {"exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}

    def step(self) -> None:
        params, grad, scratch = self.model.flat_params, self.model.flat_grads, self.scratch
        m, v = self.exp_avg, self.exp_avg_sq
        self.steps += 1
        if self.weight_decay and self.decoupled:
            params *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            grad = grad + self.weight_decay * params
        m *= self.beta1
        np.multiply(grad, 1 - self.beta1, out=scratch)
        m += scratch
        v *= self.beta2
        np.multiply(grad, grad, out=scratch)
        scratch *= 1 - self.beta2
        v += scratch
        bias_correction1 = 1 - self.beta1 ** self.steps
        bias_correction2_sqrt = math.sqrt(1 - self.beta2 ** self.steps)
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
