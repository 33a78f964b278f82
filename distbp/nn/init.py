"""Initialisation from the seed: He normal before ReLU-like activations (He et al. 2015),
Glorot uniform otherwise (Glorot & Bengio 2010)."""

from __future__ import annotations

import numpy as np

from distbp.nn.layer import Layer


def init_weight(weight: np.ndarray, rng: np.random.Generator, fan_in: int, fan_out: int,
                nonlinearity: str) -> None:
    """Fill `weight` in place for a layer followed by `nonlinearity`."""
    if nonlinearity in ("relu", "leaky_relu"):
        weight[...] = rng.standard_normal(weight.shape) * np.sqrt(2.0 / fan_in)
    else:
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        weight[...] = rng.uniform(-limit, limit, weight.shape)


def nonlinearity_after(layers: list[Layer], index: int) -> str:
    """The activation that follows layers[index] (past normalisation, dropout and
    pooling), used to pick its initialisation: 'relu', 'leaky_relu' or 'linear'."""
    for following in layers[index + 1:]:
        name = getattr(following, "init_name", None)
        if name is not None:
            return name
        if not following.transparent_to_init:
            return "linear"
    return "linear"
