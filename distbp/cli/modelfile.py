"""A trained model as a file: `--save-model PATH.npz` writes it, `distbp.load_model(path)`
rebuilds it (from a saved model, or from a checkpoint) ready for `model.predict`.

The file is a checksummed .npz of plain arrays (no pickles), written atomically: the
layer spec (JSON of each layer's constructor arguments), dtype, parameters, model state
(BatchNorm's running statistics), input shape, output width, what the outputs are
(class probabilities or regression values) and the input normalisation the job applied.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np

from distbp.cli import checkpoint
from distbp.data.dataset import Dataset, NormalizedRows
from distbp.errors import check
from distbp.nn.saved import layers_from_reprs, layers_from_spec, spec_of
from distbp.nn.sequential import Sequential

KIND = "distbp-model"


def normalization_of(dataset: Dataset) -> tuple[float, float]:
    """(mean, std) the job subtracts from and divides the raw inputs by."""
    rows = dataset.x_train
    if isinstance(rows, NormalizedRows):
        return rows.mean, 1.0 / rows.scale
    return 0.0, 1.0  # the embedded set's rows are used as they are


def save_model(path: str | Path, model: Sequential, dataset: Dataset) -> Path:
    """Write `model` (trained on `dataset`) to path, atomically."""
    arrays = {"kind": np.array(KIND), "spec": np.array(json.dumps(spec_of(model.layers))),
              "dtype": np.array(str(model.dtype)), "params": model.flat_params,
              "model_state": model.flat_state,
              "input_shape": np.array(dataset.x_train.shape[1:], dtype=np.int64),
              "outputs": np.array(dataset.classes), "targets": np.array(dataset.targets),
              "normalization": np.array(normalization_of(dataset))}
    return checkpoint.write_atomic(Path(path), arrays)


def load_model(path: str | Path) -> Sequential:
    """A Sequential in evaluation mode from a saved model or a checkpoint, with its
    normalisation and output kind set for predict(); anything malformed is one line."""
    arrays = checkpoint.load(path, "model file")
    if "spec" in arrays:
        check(str(arrays.get("kind")) == KIND, f"{path} is not a distbp model")
        layers = layers_from_spec(json.loads(str(arrays["spec"])))
        dtype, task = str(arrays["dtype"]), str(arrays["targets"])
        normalization = tuple(float(v) for v in arrays["normalization"])
    else:  # a checkpoint: its fingerprint names the layers and the dtype
        check("fingerprint" in arrays, f"{path} is neither a distbp model nor a checkpoint")
        fingerprint: dict[str, Any] = checkpoint.decode(arrays["fingerprint"],
                                                        f"fingerprint in {path}")
        described = model_reprs(fingerprint.get("model"), path)
        layers, dtype = layers_from_reprs(described[:-1]), described[-1]
        task = "values" if fingerprint.get("loss") == "'mse'" else "labels"
        normalization = tuple(float(v) for v in arrays.get("normalization", (0.0, 1.0)))
    model = Sequential(layers, dtype=dtype)
    for key, target in (("params", model.flat_params), ("model_state", model.flat_state)):
        check(key in arrays and arrays[key].shape == target.shape,
              f"{path}: '{key}' does not fit the layers it describes")
        target[...] = arrays[key]
    model.task = "probabilities" if task == "labels" else "outputs"
    model.normalization = normalization
    if "input_shape" in arrays:
        model.input_shape = tuple(int(d) for d in arrays["input_shape"])
    return model


def model_reprs(text: Any, path: str | Path) -> list[str]:
    """The fingerprint's model field (a repr of a list of layer reprs and the dtype)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        value = None
    check(isinstance(value, list) and len(value) >= 2 and all(isinstance(v, str) for v in value),
          f"{path}: its fingerprint does not describe a model")
    return value
