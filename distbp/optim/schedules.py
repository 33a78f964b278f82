"""Learning-rate schedules: callables mapping the step number (from 0) to a rate.

Warmup wraps any schedule: it ramps linearly to the wrapped schedule's rate.
"""

from __future__ import annotations

import math

from distbp.errors import check


class Schedule:
    """Base: __call__(step) -> learning rate."""

    def __call__(self, step: int) -> float:
        raise NotImplementedError


class Constant(Schedule):
    """The same rate at every step."""

    def __init__(self, lr: float) -> None:
        check(lr >= 0, f"Constant: lr must be >= 0, got {lr!r}")
        self.lr = float(lr)

    def __call__(self, step: int) -> float:
        return self.lr


class StepDecay(Schedule):
    """lr * gamma ** (step // step_size)."""

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        check(lr >= 0, f"StepDecay: lr must be >= 0, got {lr!r}")
        check(step_size > 0, f"StepDecay: step_size must be > 0, got {step_size!r}")
        check(gamma > 0, f"StepDecay: gamma must be > 0, got {gamma!r}")
        self.lr, self.step_size, self.gamma = float(lr), int(step_size), float(gamma)

    def __call__(self, step: int) -> float:
        return self.lr * self.gamma ** (step // self.step_size)


class Cosine(Schedule):
    """Cosine decay from lr at step 0 to min_lr at total_steps (and after)."""

    def __init__(self, lr: float, total_steps: int, min_lr: float = 0.0) -> None:
        check(lr >= 0 and min_lr >= 0, f"Cosine: lr and min_lr must be >= 0, "
                                       f"got {lr!r}, {min_lr!r}")
        check(total_steps > 0, f"Cosine: total_steps must be > 0, got {total_steps!r}")
        self.lr, self.total_steps, self.min_lr = float(lr), int(total_steps), float(min_lr)

    def __call__(self, step: int) -> float:
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.lr - self.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))


class Warmup(Schedule):
    """Linear warmup over warmup_steps to the inner schedule, which then runs on.

    During warmup the rate is inner(step) * (step + 1) / warmup_steps.
    """

    def __init__(self, inner: Schedule, warmup_steps: int) -> None:
        check(warmup_steps >= 0, f"Warmup: warmup_steps must be >= 0, got {warmup_steps!r}")
        self.inner, self.warmup_steps = inner, int(warmup_steps)

    def __call__(self, step: int) -> float:
        rate = self.inner(step)
        if step < self.warmup_steps:
            rate *= (step + 1) / self.warmup_steps
        return rate
