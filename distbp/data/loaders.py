"""Datasets by name: the embedded synthetic one, the MNIST family (IDX), user .npz files."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from distbp.data.dataset import Dataset, finish
from distbp.data.idx import open_idx
from distbp.data.synthetic import synthetic
from distbp.errors import ConfigError, check

IDX_FAMILY = {"fashion-mnist": "apt-get install dataset-fashion-mnist",
              "mnist": "download the four MNIST IDX files into --data-dir"}
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
                      f"other three IDX files in {', '.join(map(str, candidates))}; get it "
                      f"with `{IDX_FAMILY[name]}`, or pass --data-dir or set DISTBP_DATA")


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
    """A user's .npz with x_train, y_train, x_test, y_test (no pickles)."""
    check(zipfile.is_zipfile(path) if os.path.isfile(path) else False,
          f"cannot read {path} as .npz: " + ("not a zip archive" if os.path.isfile(path)
                                             else "no such file"))
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in NPZ_KEYS if key not in archive.files]
            check(not missing, f"{path}: missing array(s) {', '.join(missing)} (needs "
                               f"{', '.join(NPZ_KEYS)})")
            arrays = {key: archive[key] for key in NPZ_KEYS}
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path}: refused: contains pickled objects or object arrays "
                          f"({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ConfigError(f"cannot read {path} as .npz: {exc}") from None
    check_user_arrays(path, arrays)
    return finish(Path(path).name, arrays, dtype)


def check_user_arrays(path: str, arrays: dict[str, np.ndarray]) -> None:
    """One clear line for each way a user's arrays can be unusable."""
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    for key in ("x_train", "x_test"):
        x = arrays[key]
        check(x.ndim >= 2 and len(x) > 0, f"{path}: {key} must have shape (examples, "
                                          f"features...), got {x.shape}")
        check(np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x),
              f"{path}: {key} must be real numbers, got dtype {x.dtype}")
        check(not np.issubdtype(x.dtype, np.floating) or bool(np.isfinite(x).all()),
              f"{path}: {key} contains NaN or infinite values")
    check(x_train.shape[1:] == x_test.shape[1:], f"{path}: x_train rows {x_train.shape[1:]} "
                                                 f"and x_test rows {x_test.shape[1:]} differ")
    for key in ("y_train", "y_test"):
        y = arrays[key]
        check(y.ndim == 1 and np.issubdtype(y.dtype, np.integer),
              f"{path}: {key} must be 1-D integer labels, got {y.dtype} {y.shape}")
        check(len(y) == 0 or y.min() >= 0, f"{path}: {key} has negative labels")


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
