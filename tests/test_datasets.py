"""IDX and .npz loading: round trips, every corruption gives one clear line, rows on demand."""

import numpy as np
import pytest
from idx_helpers import CORRUPTIONS, corrupt, write_family
from mpi_helpers import run_mpi

from distbp import datasets
from distbp.data import GlobalBatchSampler


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTBP_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("DISTBP_DATA", raising=False)


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    arrays = write_family(tmp_path / "fashion-mnist", gz=gz)
    data = datasets.load("fashion-mnist", str(tmp_path))
    assert data.x_train.raw.dtype == np.uint8 and isinstance(data.x_train.raw, np.memmap)
    np.testing.assert_array_equal(data.x_train.raw, arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(data.y_test, arrays["t10k-labels-idx1-ubyte"])
    pixels = arrays["train-images-idx3-ubyte"].astype(np.float64)
    rows = data.x_train[[3, 1]]
    assert rows.dtype == np.float32 and rows.shape == (2, 784)
    expected = (pixels[[3, 1]].reshape(2, -1) - pixels.mean()) / pixels.std()
    np.testing.assert_allclose(rows, expected, rtol=1e-5, atol=1e-5)
    assert data.classes == 10


def test_gz_is_decompressed_once_into_the_cache(tmp_path):
    write_family(tmp_path / "d")
    datasets.load("fashion-mnist", str(tmp_path / "d"))
    cached = sorted(p.name for p in (tmp_path / "cache").iterdir() if not p.name.startswith("."))
    assert len(cached) == 4
    stamps = [p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()]
    datasets.load("fashion-mnist", str(tmp_path / "d"))
    assert stamps == [p.stat().st_mtime_ns for p in (tmp_path / "cache").iterdir()]


CASES = [*CORRUPTIONS, "labels out of range", "corrupt gzip"]


@pytest.mark.parametrize("case", CASES)
def test_corrupt_files_give_a_clear_error(tmp_path, case):
    message = corrupt(tmp_path / "d", case)
    with pytest.raises(ValueError) as info:
        datasets.load("fashion-mnist", str(tmp_path / "d"))
    assert message in str(info.value)


@pytest.mark.parametrize("case", ["truncated", "labels out of range", "corrupt gzip"])
def test_corrupt_files_under_mpirun_give_one_line_and_exit_2(tmp_path, case):
    message = corrupt(tmp_path / "d", case)
    result, seconds = run_mpi(2, ["-m", "distbp.train", "--dataset", "fashion-mnist",
                                  "--data-dir", str(tmp_path / "d")], timeout=60,
                              DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 2 and seconds < 20
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distbp.train: error: ") \
        and message in lines[0], result.stderr


def test_missing_dataset_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTBP_DATA", str(tmp_path / "env"))
    with pytest.raises(ValueError) as info:
        datasets.load("mnist", str(tmp_path / "flag"))
    text = str(info.value)
    for place in (tmp_path / "flag", tmp_path / "env" / "mnist", "/usr/share/datasets/mnist"):
        assert str(place) in text
    assert text.startswith("mnist not found: looked for train-images-idx3-ubyte[.gz]")


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
    ({"y_train": np.zeros(30)}, "y_train must be 1-D integer labels, got float64"),
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


class RecordingRows:
    """A uint8 array that records which rows were read."""

    def __init__(self, array):
        self.array, self.read = array, set()
        self.shape, self.dtype = array.shape, array.dtype

    def __len__(self):
        return len(self.array)

    def __getitem__(self, rows):
        self.read.update(np.arange(len(self.array))[rows].tolist())
        return self.array[rows]


@pytest.mark.parametrize("rank", [0, 3])
def test_each_rank_reads_only_its_own_rows(rank):
    raw = RecordingRows(np.zeros((50, 2, 2), dtype=np.uint8))
    rows = datasets.NormalizedRows(raw, 0.0, 1.0, np.float32)
    sampler = GlobalBatchSampler(50, 16, seed=3)
    mine = set()
    for indices, _ in sampler.local_batches(0, rank, 4):
        assert rows[indices].shape == (len(indices), 4)
        mine.update(indices.tolist())
    assert raw.read == mine and len(mine) in (12, 13)  # about a quarter of 50
