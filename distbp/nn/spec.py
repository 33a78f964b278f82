"""Layer stacks from a short spec: `--model "conv32,bn,relu,pool2,dense128,relu,dropout0.3"`.

Tokens, comma-separated: conv<C>[k<K>][s<S>][p<P>] (3x3, stride 1, 'same' padding by
default), pool<K> (max), gap (global average), flatten, bn, dropout<P>, dense<N>, relu,
leakyrelu, tanh, sigmoid, rnn<N>, lstm<N> (the last hidden state; rnn<N>seq, lstm<N>seq:
every step's). Image input is reshaped to (1, H, W) before a first conv, to (H, W) (rows
as time steps) before a first recurrent layer, a
Flatten goes in before the first dense after convolutions, and a final Dense to the
classes is appended. `mlp` builds Dense layers from --hidden and --activation; `cnn` is
CNN_SPEC. A new layer is one entry in TOKENS.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable

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

CNN_SPEC = "conv32,bn,relu,pool2,conv64,bn,relu,pool2,flatten,dense256,bn,relu,dropout0.4"
ACTIVATIONS = {"relu": ReLU, "leakyrelu": LeakyReLU, "tanh": Tanh, "sigmoid": Sigmoid,
               "leaky_relu": LeakyReLU}
Shape = tuple[int, ...]  # per example: (features,) or (channels, height, width)


def conv(match: re.Match, shape: Shape) -> list[tuple[Layer, Shape]]:
    out, k, s = int(match[1]), int(match[2] or 3), int(match[3] or 1)
    padding = int(match[4]) if match[4] is not None else k // 2
    check(out > 0 and k > 0 and s > 0, f"--model: '{match[0]}' needs sizes > 0")
    layer = Conv2D(shape[0], out, k, s, padding)
    size = (layer.output_size(shape[1]), layer.output_size(shape[2]))
    check(min(size) > 0, f"--model: '{match[0]}' on {shape[1]}x{shape[2]} images leaves "
                         "nothing: the kernel is larger than the input")
    return [(layer, (out, *size))]


def pool(match: re.Match, shape: Shape) -> list[tuple[Layer, Shape]]:
    size = int(match[1] or 2)
    check(size > 0 and shape[1] % size == 0 and shape[2] % size == 0,
          f"--model: '{match[0]}' needs a size > 0 dividing the {shape[1]}x{shape[2]} images")
    return [(MaxPool2D(size), (shape[0], shape[1] // size, shape[2] // size))]


def dense(match: re.Match, shape: Shape) -> list[tuple[Layer, Shape]]:
    check(int(match[1]) > 0, f"--model: '{match[0]}' needs a width > 0")
    flat = [] if len(shape) == 1 else [(Flatten(), (math.prod(shape),))]
    return [*flat, (Dense(math.prod(shape), int(match[1])), (int(match[1]),))]


def recurrent(match: re.Match, shape: Shape) -> list[tuple[Layer, Shape]]:
    hidden, sequences = int(match[2]), match[3] is not None
    check(hidden > 0, f"--model: '{match[0]}' needs a width > 0")
    stack: list[tuple[Layer, Shape]] = []
    if len(shape) != 2:  # flat square rows: the image's rows are the time steps
        check(len(shape) == 1 and is_square(shape[0]),
              f"--model: '{match[0]}' needs sequences (time, features) or square images, "
              f"got rows of shape {shape}")
        side = math.isqrt(shape[0])
        shape = (side, side)
        stack.append((Reshape(side, side), shape))
    cls = RNN if match[1] == "rnn" else LSTM
    layer = cls(shape[1], hidden, return_sequences=sequences)
    return [*stack, (layer, (shape[0], hidden) if sequences else (hidden,))]


def dropout(match: re.Match, shape: Shape) -> list[tuple[Layer, Shape]]:
    p = float(match[1] or 0.5)
    check(0 <= p < 1, f"--model: '{match[0]}' needs a probability in [0, 1)")
    return [(Dropout(p), shape)]


# token pattern -> (needs image input, builder(match, shape) -> [(layer, output shape)])
TOKENS: dict[str, tuple[bool, Callable[[re.Match, Shape], list[tuple[Layer, Shape]]]]] = {
    r"conv(\d+)(?:k(\d+))?(?:s(\d+))?(?:p(\d+))?": (True, conv),
    r"pool(\d+)?": (True, pool),
    r"gap": (True, lambda m, shape: [(GlobalAvgPool2D(), (shape[0],))]),
    r"flatten": (False, lambda m, shape: [(Flatten(), (math.prod(shape),))]),
    r"bn": (False, lambda m, shape: [(BatchNorm(shape[0]), shape)]),
    r"dropout(\d*\.?\d+)?": (False, dropout),
    r"dense(\d+)": (False, dense),
    r"(rnn|lstm)(\d+)(seq)?": (False, recurrent),
    **{name: (False, lambda m, shape, cls=cls: [(cls(), shape)])
       for name, cls in ACTIVATIONS.items()},
}


def build_layers(spec: str, input_shape: Shape, classes: int) -> list[Layer]:
    """Layers for `spec` on inputs of input_shape (per example) and `classes` outputs."""
    return [layer for layer, _ in build_with_shapes(spec, input_shape, classes)]


def build_with_shapes(spec: str, input_shape: Shape, classes: int) -> list[tuple[Layer, Shape]]:
    """(layer, its output shape per example) for `spec`; any bad token is one line."""
    stack: list[tuple[Layer, Shape]] = []
    shape = tuple(input_shape)
    for token in [t.strip().lower() for t in spec.split(",") if t.strip()]:
        found = [(match, entry) for pattern, entry in TOKENS.items()
                 if (match := re.fullmatch(pattern, token))]
        if not found:
            raise ConfigError(f"--model: unknown layer '{token}' (tokens: conv<C>[k<K>][s<S>]"
                              "[p<P>], pool<K>, gap, flatten, bn, dropout<P>, dense<N>, "
                              "rnn<N>[seq], lstm<N>[seq], relu, leakyrelu, tanh, sigmoid; see "
                              "--help)")
        match, (needs_image, builder) = found[0]
        if needs_image and len(shape) != 3:
            check(len(shape) == 1 and not stack and is_square(shape[0]),
                  f"--model: '{token}' needs image input, got rows of shape {shape}")
            side = math.isqrt(shape[0])
            stack.append((Reshape(1, side, side), (1, side, side)))
            shape = (1, side, side)
        stack += builder(match, shape)
        shape = stack[-1][1]
    if len(shape) != 1:
        stack.append((Flatten(), (math.prod(shape),)))
    stack.append((Dense(math.prod(shape), classes), (classes,)))
    return stack


def mlp_spec(hidden: list[int], activation: str) -> str:
    """The spec of --model mlp: dense<N>,<activation> per hidden size."""
    return ",".join(f"dense{size},{activation}" for size in hidden)


def is_square(n: int) -> bool:
    """Whether n is a perfect square (a flat square image)."""
    return math.isqrt(n) ** 2 == n
