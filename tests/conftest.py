"""Shared test helpers: small random models and data."""

from __future__ import annotations

import numpy as np
import pytest

import distbp


def mlp(sizes: list[int], activation=distbp.Tanh, seed: int = 0,
        dtype=np.float64) -> distbp.Sequential:
    layers: list[distbp.Layer] = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(distbp.Dense(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers.append(activation())
    return distbp.Sequential(layers, seed=seed, dtype=dtype)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
