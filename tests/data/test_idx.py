"""IDX files (distbp.data.idx) through the MNIST-family loader: round trips, the gzip
cache, and every corruption giving one clear line (also under mpirun)."""

import gzip
import struct

import numpy as np
import pytest
from idx_helpers import CORRUPTIONS, corrupt, write_family
from mpi_helpers import run_mpi

from distbp.data import loaders as datasets
from distbp.data.idx import open_idx


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


def gz_with(path, header_shape, payload: bytes):
    path.write_bytes(gzip.compress(bytes([0, 0, 8, len(header_shape)])
                                   + struct.pack(f">{len(header_shape)}I", *header_shape)
                                   + payload, compresslevel=1))


@pytest.mark.parametrize("shape,payload,message", [
    ((5, 28, 28), bytes(100), "decompresses to fewer bytes than its header (5, 28, 28) needs "
                              "(3936): truncated"),
    ((2, 28, 28), bytes(50 << 20), "decompresses to more bytes than its header (2, 28, 28) "
                                   "needs (1584): trailing data"),
    ((1 << 30, 1 << 20, 1 << 20), bytes(10), "declares 1,180,591,620,717,411,303,440 bytes, "
                                             "more than the"),
])
def test_a_bad_gz_is_refused_by_its_header_and_never_cached(tmp_path, shape, payload, message):
    source = tmp_path / "train-images-idx3-ubyte.gz"
    gz_with(source, shape, payload)
    with pytest.raises(ValueError) as info:
        open_idx(source, 3, cache_dir=tmp_path / "cache")
    assert str(info.value).startswith(f"{source}: ") and message in str(info.value)
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [".lock"]  # nothing cached
