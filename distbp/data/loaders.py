"""Datasets by name: the embedded synthetic one, the MNIST family (IDX), user .npz files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from distbp.data.dataset import Dataset, finish
from distbp.data.idx import open_idx
from distbp.data.npz import mapped_arrays
from distbp.data.synthetic import synthetic
from distbp.errors import ConfigError, check

IDX_FAMILY = {  # how to get each: what the one-line error says
    "fashion-mnist": "install it with `apt-get install dataset-fashion-mnist` (Debian, "
                     "Ubuntu), or put the four files in a directory and pass --data-dir DIR",
    "mnist": "download the four files of the MNIST database (train-images-idx3-ubyte.gz, "
             "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
             "t10k-labels-idx1-ubyte.gz) into a directory DIR and pass --data-dir DIR (or "
             "put them in $DISTBP_DATA/mnist)"}
IDX_FILES = {"x_train": ("train-images-idx3-ubyte", 3), "y_train": ("train-labels-idx1-ubyte", 1),
             "x_test": ("t10k-images-idx3-ubyte", 3), "y_test": ("t10k-labels-idx1-ubyte", 1)}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def search_dirs(name: str, data_dir: str | None) -> list[Path]:
    """Where a named dataset is looked for, in order."""
    roots = [data_dir, os.environ.get("DISTBP_DATA")]
    dirs = []
    for root in filter(None, roots):
        dirs += [Path(root), Path(root) / name]
    return dirs + [Path("/usr/share/datasets") / name]


def find_idx_dir(name: str, data_dir: str | None) -> Path:
    """The first directory holding all four IDX files (plain or .gz)."""
    candidates = search_dirs(name, data_dir)
    for directory in candidates:
        if all(any((directory / (stem + ext)).exists() for ext in ("", ".gz"))
               for stem, _ in IDX_FILES.values()):
            return directory
    raise ConfigError(f"{name} not found: looked for train-images-idx3-ubyte[.gz] and the "
                      f"other three IDX files in {', '.join(map(str, candidates))}; "
                      f"{IDX_FAMILY[name]}")


def load_idx_family(name: str, data_dir: str | None, dtype: object) -> Dataset:
    """fashion-mnist or mnist from its four IDX files, checked and memory-mapped."""
    directory = find_idx_dir(name, data_dir)
    arrays = {}
    for key, (stem, ndim) in IDX_FILES.items():
        path = directory / stem
        arrays[key] = open_idx(path if path.exists() else path.with_name(stem + ".gz"), ndim)
    for split in ("train", "test"):
        labels = arrays[f"y_{split}"]
        check(labels.max() < 10, f"{name}: {split} labels must be in [0, 10), found "
                                 f"{int(labels.max())}")
        check(arrays[f"x_{split}"].shape[1:] == (28, 28),
              f"{name}: {split} images must be 28x28, got {arrays[f'x_{split}'].shape[1:]}")
    return finish(name, arrays, dtype)


def load_npz(path: str, dtype: object) -> Dataset:
    """A user's .npz with x_train, y_train, x_test, y_test (no pickles), extracted once
    into the cache and memory-mapped: the ranks of a node share one copy."""
    arrays = mapped_arrays(Path(path), NPZ_KEYS)
    check_user_arrays(path, arrays, np.dtype(dtype))
    return finish(Path(path).name, arrays, dtype)


def check_user_arrays(path: str, arrays: dict[str, np.ndarray], dtype: np.dtype) -> None:
    """One clear line for each way a user's arrays can be unusable; features must be
    finite in the compute dtype (1e300 is finite in float64, not in float32)."""
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    for key in ("x_train", "x_test"):
        x = arrays[key]
        check(x.ndim >= 2 and len(x) > 0, f"{path}: {key} must have shape (examples, "
                                          f"features...), got {x.shape}")
        check(np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x),
              f"{path}: {key} must be real numbers, got dtype {x.dtype}")
        largest = largest_magnitude(x)
        check(np.isfinite(largest), f"{path}: {key} contains NaN or infinite values")
        limit = float(np.finfo(dtype).max) / 1e6  # room for the normalisation and the model
        check(largest <= limit, f"{path}: {key} has values up to {largest:.3g}, beyond what "
                                f"{dtype} computes with (|x| <= {limit:.3g}): rescale the "
                                "features or use --dtype float64")
    check(x_train.shape[1:] == x_test.shape[1:], f"{path}: x_train rows {x_train.shape[1:]} "
                                                 f"and x_test rows {x_test.shape[1:]} differ")
    floats = [np.issubdtype(arrays[key].dtype, np.floating) for key in ("y_train", "y_test")]
    check(floats[0] == floats[1], f"{path}: y_train and y_test must both be integer labels "
                                  "or both float targets")
    for key in ("y_train", "y_test"):
        y = arrays[key]
        if floats[0]:  # regression targets
            check(y.ndim in (1, 2) and y.shape[1:] == arrays["y_train"].shape[1:],
                  f"{path}: {key} float targets must be (examples,) or (examples, k), the "
                  f"same k for both, got {y.shape}")
            check(np.isfinite(largest_magnitude(y.reshape(len(y), -1))),
                  f"{path}: {key} contains NaN or infinite values")
            continue
        check(y.ndim == 1 and np.issubdtype(y.dtype, np.integer),
              f"{path}: {key} must be 1-D integer labels (or float regression targets), got "
              f"{y.dtype} {y.shape}")
        check(len(y) == 0 or y.min() >= 0, f"{path}: {key} has negative labels")


def largest_magnitude(x: np.ndarray, chunk: int = 1 << 20) -> float:
    """max |x| (NaN if any NaN), in chunks of rows: no copy of the whole array."""
    flat = x.reshape(len(x), -1)
    rows = max(1, chunk // max(flat.shape[1], 1))
    largest = 0.0
    for start in range(0, len(flat), rows):
        part = np.abs(flat[start:start + rows], dtype=np.float64)
        largest = max(largest, float(part.max(initial=0.0)))
        if np.isnan(part).any():
            return float("nan")
    return largest


def load(name: str, data_dir: str | None = None, dtype: object = np.float32) -> Dataset:
    """'synthetic', 'fashion-mnist', 'mnist', or a path to a .npz file."""
    if name == "synthetic":
        return synthetic(seed=0)
    if name in IDX_FAMILY:
        return load_idx_family(name, data_dir, dtype)
    if name.endswith(".npz"):
        return load_npz(name, dtype)
    raise ConfigError(f"unknown --dataset '{name}' (available: synthetic, fashion-mnist, "
                      "mnist, or a path to a .npz file)")
