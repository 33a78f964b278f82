"""Dataset rows (distbp.data.dataset): normalised on access, only the rows asked for."""

import numpy as np
import pytest

from distbp.data.dataset import NormalizedRows, pixel_stats
from distbp.data.sampler import GlobalBatchSampler


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
    rows = NormalizedRows(raw, 0.0, 1.0, np.float32)
    sampler = GlobalBatchSampler(50, 16, seed=3)
    mine = set()
    for indices, _ in sampler.local_batches(0, rank, 4):
        assert rows[indices].shape == (len(indices), 4)
        mine.update(indices.tolist())
    assert raw.read == mine and len(mine) in (12, 13)  # about a quarter of 50


def test_pixel_stats_are_exact():
    images = np.random.default_rng(0).integers(0, 256, (30, 5, 5)).astype(np.uint8)
    mean, std = pixel_stats(images, chunk=7)
    assert mean == pytest.approx(images.mean(), rel=1e-12)
    assert std == pytest.approx(images.std(), rel=1e-12)


def test_rows_of_read_only_mapped_data_are_copies(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(12.0).reshape(4, 3))
    raw = np.load(tmp_path / "x.npy", mmap_mode="r")
    rows = NormalizedRows(raw, 1.0, 2.0, np.float64)
    np.testing.assert_array_equal(rows[1:3], (np.arange(3.0, 9.0).reshape(2, 3) - 1) / 2)
    np.testing.assert_array_equal(raw[1], [3.0, 4.0, 5.0])  # the data itself is untouched
