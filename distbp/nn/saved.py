"""Layer stacks as data: a spec of {"type", constructor arguments} per layer that
rebuilds the layers (what a saved model stores), and a strict reader of the layer reprs
older checkpoints carry in their fingerprint."""

from __future__ import annotations

import ast
from typing import Any

from distbp.errors import ConfigError, check
from distbp.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.nn.conv import Conv2D
from distbp.nn.dense import Dense
from distbp.nn.dropout import Dropout
from distbp.nn.layer import Layer
from distbp.nn.normalization import BatchNorm
from distbp.nn.pool import GlobalAvgPool2D, MaxPool2D
from distbp.nn.recurrent import LSTM, RNN
from distbp.nn.shape import Flatten, Reshape

LAYER_TYPES: dict[str, type[Layer]] = {cls.__name__: cls for cls in (
    Dense, ReLU, LeakyReLU, Sigmoid, Tanh, Conv2D, MaxPool2D, GlobalAvgPool2D, Flatten,
    Reshape, Dropout, BatchNorm, RNN, LSTM)}


def spec_of(layers: list[Layer]) -> list[dict[str, Any]]:
    """[{"type": "Dense", "in_features": 784, ...}, ...] for `layers`."""
    return [{"type": type(layer).__name__, **layer.config()} for layer in layers]


def layers_from_spec(spec: list[dict[str, Any]]) -> list[Layer]:
    """The layers a spec describes; anything unknown or malformed is one ConfigError."""
    check(isinstance(spec, list) and spec, "a model spec must be a non-empty list of layers")
    layers = []
    for entry in spec:
        check(isinstance(entry, dict) and entry.get("type") in LAYER_TYPES,
              f"unknown layer in the model spec: {entry!r}")
        kwargs = {k: v for k, v in entry.items() if k not in ("type", "args")}
        try:
            layers.append(LAYER_TYPES[entry["type"]](*entry.get("args", []), **kwargs))
        except TypeError as exc:
            raise ConfigError(f"malformed layer in the model spec: {entry!r} ({exc})") from None
    return layers


def layers_from_reprs(reprs: list[str]) -> list[Layer]:
    """Layers from their reprs, e.g. "Conv2D(1, 32, kernel_size=3, stride=1, padding=1)":
    only calls of known layer types with literal arguments are accepted."""
    layers = []
    for text in reprs:
        try:
            call = ast.parse(text, mode="eval").body
            check(isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                  and call.func.id in LAYER_TYPES, f"not a layer: {text!r}")
            args = [ast.literal_eval(arg) for arg in call.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
            layers.append(LAYER_TYPES[call.func.id](*args, **kwargs))
        except (SyntaxError, ValueError, TypeError) as exc:
            raise ConfigError(f"cannot rebuild the layer {text!r} ({exc})") from None
    return layers
