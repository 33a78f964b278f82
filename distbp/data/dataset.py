"""One dataset's arrays. Images stay uint8 (memory-mapped for IDX); rows are normalised
to the compute dtype only when a rank reads them, so each step converts just its own rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distbp.errors import check


@dataclass
class Dataset:
    """Arrays of one dataset; x rows are examples; y integer class labels (N,), or with
    targets == "values", float regression targets (N, k) and `classes` is k."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int
    targets: str = "labels"  # or "values"

    def shapes(self) -> dict[str, object]:
        """Sizes and shapes, for configuration fingerprints."""
        return {key: (getattr(self, key).shape, str(getattr(self, key).dtype))
                for key in ("x_train", "y_train", "x_test", "y_test")}


class NormalizedRows:
    """Rows of a uint8 (or any numeric) array as (x - mean) / std in `dtype`, on access.

    Indexing returns a 2-D float array of the selected rows, features flattened.
    """

    def __init__(self, raw: np.ndarray, mean: float, std: float, dtype: object) -> None:
        self.raw, self.mean, self.scale = raw, float(mean), 1.0 / float(std)
        self.dtype = np.dtype(dtype)
        self.shape = (len(raw), int(np.prod(raw.shape[1:])))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> np.ndarray:
        out = np.asarray(self.raw[rows], dtype=self.dtype).reshape(-1, self.shape[1])
        if isinstance(self.raw, np.ndarray) and np.may_share_memory(out, self.raw):  # a view
            out = out.copy()
        out -= self.mean
        out *= self.scale
        return out


def pixel_stats(images: np.ndarray, chunk: int = 1 << 20) -> tuple[float, float]:
    """Exact mean and std of uint8 data from a histogram, in chunks (no big copies)."""
    flat = images.reshape(-1)
    counts = np.zeros(256, dtype=np.int64)
    for start in range(0, flat.size, chunk):
        counts += np.bincount(flat[start:start + chunk], minlength=256)
    values = np.arange(256, dtype=np.float64)
    mean = float(counts @ values / counts.sum())
    std = float(np.sqrt(counts @ (values - mean) ** 2 / counts.sum()))
    return mean, max(std, 1e-12)


def finish(name: str, arrays: dict[str, np.ndarray], dtype: object) -> Dataset:
    """Check labels, normalise uint8 images, and wrap the arrays as a Dataset."""
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        check(len(x) == len(y), f"{name}: x_{split} has {len(x)} rows but y_{split} has "
                                f"{len(y)} labels")
    if arrays["x_train"].dtype == np.uint8:
        mean, std = pixel_stats(arrays["x_train"])
    else:
        mean, std = 0.0, 1.0
    rows = {key: NormalizedRows(arrays[key], mean, std, dtype) for key in ("x_train", "x_test")}
    if np.issubdtype(arrays["y_train"].dtype, np.floating):  # regression targets, (N, k)
        y_train, y_test = (np.asarray(arrays[key], dtype=dtype).reshape(len(arrays[key]), -1)
                           for key in ("y_train", "y_test"))
        return Dataset(name, rows["x_train"], y_train, rows["x_test"], y_test,
                       y_train.shape[1], "values")
    classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    return Dataset(name, rows["x_train"], arrays["y_train"].astype(np.int64), rows["x_test"],
                   arrays["y_test"].astype(np.int64), classes)
