"""`python -m distbp.export MODEL -o model.onnx`: a trained model (a --save-model file or a
checkpoint) as an ONNX graph computing what `model.predict` does: the saved input
normalisation, every layer in inference mode (BatchNorm's running statistics, no
dropout), then a softmax for a classifier. float32, opset 17, any batch size.

Input "input" (batch, *input shape) of raw values; output "probabilities" (classifier) or
"outputs" (regression). Needs the onnx extra (`pip install 'distbp[onnx]'`); with
onnxruntime installed the file is run once and compared with model.predict.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from distbp.cli.modelfile import load_model
from distbp.errors import ConfigError, check
from distbp.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.nn.conv import Conv2D
from distbp.nn.dense import Dense
from distbp.nn.dropout import Dropout
from distbp.nn.layer import Layer
from distbp.nn.normalization import BatchNorm
from distbp.nn.pool import GlobalAvgPool2D, MaxPool2D
from distbp.nn.recurrent import LSTM, RNN, Recurrent
from distbp.nn.sequential import Sequential
from distbp.nn.shape import Flatten, Reshape

OPSET = 17  # onnxruntime >= 1.13 runs it
IR_VERSION = 8  # the IR of opset 17, so older runtimes read the file too


def onnx_module() -> Any:
    """The onnx package, or one line saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("export needs the onnx package: pip install 'distbp[onnx]'") from None
    return onnx


class Graph:
    """ONNX nodes and initialisers under construction; op() returns its output names."""

    def __init__(self) -> None:
        self.onnx = onnx_module()
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def const(self, name: str, values: Any, dtype: object = np.float32) -> str:
        array = np.ascontiguousarray(np.asarray(values, dtype=dtype))
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, name: str | None = None,
           **attributes: Any) -> Any:
        """Add a node; its one output name (or a list of `outputs` names)."""
        base = name or f"{op_type.lower()}_{len(self.nodes)}"
        names = [base] if outputs == 1 else [f"{base}_{k}" for k in range(outputs)]
        self.nodes.append(self.onnx.helper.make_node(op_type, list(inputs), names,
                                                     name=f"node_{base}", **attributes))
        return names[0] if outputs == 1 else names


def recurrent(g: Graph, layer: Recurrent, x: str, prefix: str) -> str:
    """(B, T, F) batch-first -> ONNX's time-major RNN/LSTM -> (B, H) or (B, T, H). ONNX
    keeps W (dirs, G H, F) and orders the LSTM gates i, o, f, c; distbp keeps
    (F, G H) with gates i, f, g, o."""
    hidden = layer.hidden_size
    order = [0, 3, 1, 2] if isinstance(layer, LSTM) else [0]  # ONNX's gate k is ours order[k]

    def gates(matrix: np.ndarray) -> np.ndarray:  # (G H, ...) rows in ONNX's gate order
        return np.concatenate([matrix[k * hidden:(k + 1) * hidden] for k in order])

    weight = g.const(f"{prefix}.W", gates(layer.W_ih.T)[None])
    recurrence = g.const(f"{prefix}.R", gates(layer.W_hh.T)[None])
    bias = g.const(f"{prefix}.B", np.concatenate([gates(layer.b), np.zeros_like(layer.b)])[None])
    steps_first = g.op("Transpose", x, perm=[1, 0, 2])
    op_type, count = ("LSTM", 3) if isinstance(layer, LSTM) else ("RNN", 2)
    every, last = g.op(op_type, steps_first, weight, recurrence, bias, outputs=count,
                       hidden_size=hidden)[:2]
    if not layer.return_sequences:  # Y_h (1, B, H) -> (B, H)
        return g.op("Squeeze", last, g.const(f"{prefix}.axis0", [0], np.int64))
    squeezed = g.op("Squeeze", every, g.const(f"{prefix}.axis1", [1], np.int64))  # (T, B, H)
    return g.op("Transpose", squeezed, perm=[1, 0, 2])


Exporter = Callable[[Graph, Any, str, str], str]  # (graph, layer m, input x, name prefix p)
EXPORTERS: dict[type[Layer], Exporter] = {
    Dense: lambda g, m, x, p: g.op("Gemm", x, g.const(f"{p}.weight", m.W),
                                   g.const(f"{p}.bias", m.b)),
    Conv2D: lambda g, m, x, p: g.op("Conv", x, g.const(f"{p}.weight", m.W),
                                    g.const(f"{p}.bias", m.b),
                                    kernel_shape=[m.kernel_size] * 2, strides=[m.stride] * 2,
                                    pads=[m.padding] * 4),
    MaxPool2D: lambda g, m, x, p: g.op("MaxPool", x, kernel_shape=[m.size] * 2,
                                       strides=[m.size] * 2),
    GlobalAvgPool2D: lambda g, m, x, p: g.op("Flatten", g.op("GlobalAveragePool", x), axis=1),
    Flatten: lambda g, m, x, p: g.op("Flatten", x, axis=1),
    Reshape: lambda g, m, x, p: g.op("Reshape", x, g.const(f"{p}.shape", [0, *m.shape],
                                                           np.int64)),
    BatchNorm: lambda g, m, x, p: g.op(
        "BatchNormalization", x, g.const(f"{p}.weight", m.gamma), g.const(f"{p}.bias", m.beta),
        g.const(f"{p}.running_mean", m.running_mean), g.const(f"{p}.running_var",
                                                               m.running_var), epsilon=m.eps),
    Dropout: lambda g, m, x, p: x,  # inference: the identity
    ReLU: lambda g, m, x, p: g.op("Relu", x),
    LeakyReLU: lambda g, m, x, p: g.op("LeakyRelu", x, alpha=m.negative_slope),
    Sigmoid: lambda g, m, x, p: g.op("Sigmoid", x),
    Tanh: lambda g, m, x, p: g.op("Tanh", x),
    RNN: recurrent,
    LSTM: recurrent,
}


def input_shape_of(model: Sequential) -> tuple[int, ...]:
    """The saved input shape, else (a checkpoint) the first layer's flat input width."""
    if getattr(model, "input_shape", None):
        return tuple(model.input_shape)
    first = model.layers[0]
    width = {Dense: lambda: first.in_features, Reshape: lambda: math.prod(first.shape)}
    check(type(first) in width, f"cannot tell the input shape of a model starting with "
                                f"{first!r}: export a --save-model file instead")
    return (width[type(first)](),)


def to_onnx(model: Sequential, input_shape: tuple[int, ...] | None = None) -> Any:
    """The ONNX ModelProto of `model` (float32) for raw inputs of input_shape per example."""
    g = Graph()
    onnx = g.onnx
    shape = tuple(input_shape or input_shape_of(model))
    x = "input"
    if len(shape) > 1:  # predict() works on flat rows
        x = g.op("Flatten", x, axis=1)
    mean, std = model.normalization
    if (mean, std) != (0.0, 1.0):
        x = g.op("Div", g.op("Sub", x, g.const("normalization.mean", mean)),
                 g.const("normalization.std", std))
    for index, layer in enumerate(model.layers):
        check(type(layer) in EXPORTERS, f"export: no ONNX form for layer {index} ({layer!r})")
        x = EXPORTERS[type(layer)](g, layer, x, f"layer{index}")
    output = "probabilities" if model.task == "probabilities" else "outputs"
    if output == "probabilities":
        g.op("Softmax", x, axis=1, name=output)
    else:
        g.op("Identity", x, name=output)
    width = next((layer.out_features for layer in reversed(model.layers)
                  if isinstance(layer, Dense)), None)  # None: left to the graph
    graph = onnx.helper.make_graph(
        g.nodes, "distbp", [onnx.helper.make_tensor_value_info(
            "input", onnx.TensorProto.FLOAT, ["batch", *shape])],
        [onnx.helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, ["batch", width])],
        g.initializers)
    proto = onnx.helper.make_model(graph, producer_name="distbp",
                                   opset_imports=[onnx.helper.make_opsetid("", OPSET)])
    proto.ir_version = IR_VERSION
    onnx.helper.set_model_props(proto, {"layers": "; ".join(map(repr, model.layers)),
                                        "normalization": f"{mean} {std}", "task": model.task})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export(model_path: str | Path, output: str | Path) -> tuple[Any, Sequential]:
    """Write the ONNX file of the model at model_path to output, atomically."""
    model = load_model(model_path)
    proto = to_onnx(model)
    output = Path(output)
    temporary = output.with_name(f".{output.name}.tmp{os.getpid()}")
    try:
        temporary.write_bytes(proto.SerializeToString())
        os.replace(temporary, output)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {output}: {exc.strerror or exc}") from None
    return proto, model


def compare(path: str | Path, model: Sequential, rows: int = 64) -> tuple[str, float] | None:
    """Run the file in onnxruntime on `rows` inputs around the training distribution:
    (onnxruntime's version, max |difference| from model.predict), or None without it."""
    try:
        import onnxruntime
    except ImportError:
        return None
    shape = input_shape_of(model)
    mean, std = model.normalization
    x = (mean + std * np.random.default_rng(0).standard_normal((rows, *shape))).astype(np.float32)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    expected = model.copy(np.float32).predict(x)
    return onnxruntime.__version__, float(np.max(np.abs(got - expected)))


def main(argv: list[str] | None = None) -> int:
    """Exit code 0, or 2 with one line for bad input."""
    parser = argparse.ArgumentParser(prog="python -m distbp.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="a --save-model file or a checkpoint")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.onnx")
    args = parser.parse_args(argv)
    try:
        proto, model = export(args.model, args.output)
    except ConfigError as exc:
        print(f"distbp.export: error: {exc}", file=sys.stderr)
        return 2
    graph = proto.graph
    shape = ", ".join(str(d.dim_value or d.dim_param) for d in
                      graph.input[0].type.tensor_type.shape.dim)
    print(f"wrote {args.output}: {len(model.layers)} layers, {model.flat_params.size} "
          f"parameters, opset {OPSET}; input 'input' ({shape}) float32, output "
          f"'{graph.output[0].name}'")
    checked = compare(args.output, model)
    if checked:
        print(f"onnxruntime {checked[0]}: max |difference| from model.predict "
              f"{checked[1]:.2e} on 64 inputs")
    return 0
