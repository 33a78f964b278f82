"""Layer stacks from a short spec: `--model "conv32,bn,relu,pool2,dense128,relu,dropout0.3"`.

Tokens, comma-separated: conv<C>[k<K>][s<S>][p<P>] (3x3, stride 1, 'same' padding by
default), pool<K> (max), gap (global average), flatten, bn, dropout<P>, dense<N>, relu,
leakyrelu, tanh, sigmoid. Image input is reshaped to (1, H, W) before a first conv, a
Flatten goes in before the first dense after convolutions, and a final Dense to the
classes is appended. `mlp` builds Dense layers from --hidden and --activation; `cnn` is
CNN_SPEC.
"""

from __future__ import annotations

import re

from distbp.errors import ConfigError, check
from distbp.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.nn.conv import Conv2D
from distbp.nn.dense import Dense
from distbp.nn.dropout import Dropout
from distbp.nn.layer import Layer
from distbp.nn.normalization import BatchNorm
from distbp.nn.pool import GlobalAvgPool2D, MaxPool2D
from distbp.nn.shape import Flatten, Reshape

CNN_SPEC = "conv32,bn,relu,pool2,conv64,bn,relu,pool2,flatten,dense256,bn,relu,dropout0.4"
ACTIVATIONS = {"relu": ReLU, "leakyrelu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid,
               "leaky_relu": LeakyReLU}
CONV = re.compile(r"conv(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?")


def build_layers(spec: str, input_shape: tuple[int, ...], classes: int) -> list[Layer]:
    """Layers for `spec` on inputs of input_shape (per example) and `classes` outputs."""
    layers: list[Layer] = []
    shape = tuple(input_shape)  # per-example shape as it flows through the stack
    for token in [t.strip().lower() for t in spec.split(",") if t.strip()]:
        conv = CONV.fullmatch(token)
        if conv:
            if len(shape) != 3:
                check(len(shape) == 1 and int(len(layers) == 0) and is_square(shape[0]),
                      f"--model: '{token}' needs image input, got rows of shape {shape}")
                side = int(round(shape[0] ** 0.5))
                layers.append(Reshape(1, side, side))
                shape = (1, side, side)
            out, k, s, p = (int(conv.group(1)), int(conv.group(2) or 3), int(conv.group(3) or 1),
                            conv.group(4))
            layer = Conv2D(shape[0], out, k, s, int(p) if p is not None else k // 2)
            layers.append(layer)
            shape = (out, layer.output_size(shape[1]), layer.output_size(shape[2]))
        elif token.startswith("pool"):
            size = int(token[4:] or 2)
            check(len(shape) == 3, f"--model: '{token}' needs (C, H, W), got {shape}")
            layers.append(MaxPool2D(size))
            shape = (shape[0], shape[1] // size, shape[2] // size)
        elif token == "gap":
            layers.append(GlobalAvgPool2D())
            shape = (shape[0],)
        elif token == "flatten":
            layers.append(Flatten())
            shape = (int(_product(shape)),)
        elif token == "bn":
            layers.append(BatchNorm(shape[0]))
        elif token.startswith("dropout"):
            layers.append(Dropout(float(token[7:] or 0.5)))
        elif token.startswith("dense"):
            if len(shape) != 1:
                layers.append(Flatten())
                shape = (int(_product(shape)),)
            layers.append(Dense(shape[0], int(token[5:])))
            shape = (int(token[5:]),)
        elif token in ACTIVATIONS:
            layers.append(ACTIVATIONS[token]())
        else:
            raise ConfigError(f"--model: unknown layer '{token}' (see python -m distbp.train "
                              "--help)")
    if len(shape) != 1:
        layers.append(Flatten())
        shape = (int(_product(shape)),)
    layers.append(Dense(shape[0], classes))
    return layers


def mlp_spec(hidden: list[int], activation: str) -> str:
    """The spec of --model mlp: dense<N>,<activation> per hidden size."""
    return ",".join(f"dense{size},{activation}" for size in hidden)


def is_square(n: int) -> bool:
    """Whether n is a perfect square (a flat square image)."""
    return int(round(n ** 0.5)) ** 2 == n


def _product(shape: tuple[int, ...]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
