"""IDX and .npz loading: round trips, every corruption gives one clear line, rows on demand."""

import numpy as np
import pytest
from idx_helpers import write_family

from distbp.data import loaders as datasets


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTBP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DISTBP_DATA", raising=False)


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTBP_DATA", str(tmp_path / "env"))
    with pytest.raises(ValueError) as info:
        datasets.load("mnist", str(tmp_path / "flag"))
    text = str(info.value)
    for place in (tmp_path / "flag", tmp_path / "env" / "mnist", "/usr/share/datasets/mnist"):
        assert str(place) in text
    assert text.startswith("mnist not found: looked for train-images-idx3-ubyte[.gz]")
    assert text.endswith("download the four files of the MNIST database (train-images-idx3-ubyte"
                         ".gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
                         "t10k-labels-idx1-ubyte.gz) into a directory DIR and pass --data-dir "
                         "DIR (or put them in $DISTBP_DATA/mnist)")


def test_data_dir_and_env_var_are_searched(tmp_path, monkeypatch):
    write_family(tmp_path / "env" / "fashion-mnist", n_train=20)
    monkeypatch.setenv("DISTBP_DATA", str(tmp_path / "env"))
    assert len(datasets.load("fashion-mnist").x_train) == 20
    write_family(tmp_path / "flag", n_train=30)
    assert len(datasets.load("fashion-mnist", str(tmp_path / "flag")).x_train) == 30


def save_npz(path, **overrides):
    rng = np.random.default_rng(1)
    arrays = {"x_train": rng.standard_normal((30, 4)), "y_train": rng.integers(0, 3, 30),
              "x_test": rng.standard_normal((10, 4)), "y_test": rng.integers(0, 3, 10)}
    arrays.update(overrides)
    np.savez(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def test_npz_happy_path(tmp_path):
    arrays = save_npz(tmp_path / "d.npz", y_train=np.arange(30) % 4)
    data = datasets.load(str(tmp_path / "d.npz"), dtype=np.float64)
    np.testing.assert_array_equal(data.x_train[np.arange(30)], arrays["x_train"])
    assert data.classes == 4 and data.x_test.shape == (10, 4)


@pytest.mark.parametrize("overrides,message", [
    ({"y_test": None}, "missing array(s) y_test"),
    ({"x_train": np.zeros((29, 4))}, "x_train has 29 rows but y_train has 30 labels"),
    ({"x_test": np.zeros((10, 5))}, "x_train rows (4,) and x_test rows (5,) differ"),
    ({"y_train": np.zeros(30)}, "must both be integer labels or both float targets"),
    ({"y_train": np.zeros((30, 2, 2)), "y_test": np.zeros((10, 2, 2))},
     "float targets must be (examples,) or (examples, k)"),
    ({"y_train": np.full(30, -1)}, "y_train has negative labels"),
    ({"x_train": np.full((30, 4), np.nan)}, "x_train contains NaN or infinite values"),
    ({"x_test": np.zeros(10)}, "x_test must have shape (examples, features...)"),
    ({"x_train": np.array([[{}]] * 30, dtype=object)}, "refused: contains pickled objects"),
])
def test_npz_failure_modes(tmp_path, overrides, message):
    save_npz(tmp_path / "d.npz", **overrides)
    with pytest.raises(ValueError) as info:
        datasets.load(str(tmp_path / "d.npz"))
    assert message in str(info.value)


def test_npz_that_is_not_a_zip(tmp_path):
    (tmp_path / "d.npz").write_text("hello")
    with pytest.raises(ValueError, match=r"cannot read .*d\.npz as \.npz"):
        datasets.load(str(tmp_path / "d.npz"))


@pytest.mark.parametrize("width", [None, 3])
def test_npz_float_targets_are_regression_values(tmp_path, width):
    shape = (30,) if width is None else (30, width)
    rng = np.random.default_rng(2)
    save_npz(tmp_path / "r.npz", y_train=rng.standard_normal(shape),
             y_test=rng.standard_normal((10, *shape[1:])))
    data = datasets.load(str(tmp_path / "r.npz"))
    assert data.targets == "values" and data.classes == (width or 1)
    assert data.y_train.shape == (30, width or 1) and data.y_train.dtype == np.float32
