"""Gradient clipping by the global norm (the cure for exploding gradients in BPTT)."""

from __future__ import annotations

import math

import numpy as np

from distbp.errors import check
from distbp.nn.sequential import Sequential

EPS = 1e-6  # as torch.nn.utils.clip_grad_norm_


def squared_norm(values: np.ndarray) -> float:
    """sum(values^2), accumulated in float64 without a copy."""
    return float(np.einsum("i,i->", values, values, dtype=np.float64))


def clip_by_norm(values: np.ndarray, norm: float, max_norm: float) -> None:
    """Scale `values` in place by max_norm / (norm + 1e-6) when that is below 1."""
    factor = max_norm / (norm + EPS)
    if factor < 1:
        values *= values.dtype.type(factor)


def clip_grad_norm(model: Sequential, max_norm: float) -> float:
    """Clip all of model's gradients together to a total L2 norm of at most max_norm, like
    torch.nn.utils.clip_grad_norm_; returns the norm before clipping."""
    check(math.isfinite(max_norm) and max_norm > 0,
          f"clip_grad_norm: max_norm must be a finite number > 0, got {max_norm!r}")
    norm = math.sqrt(squared_norm(model.flat_grads))
    clip_by_norm(model.flat_grads, norm, max_norm)
    return norm
