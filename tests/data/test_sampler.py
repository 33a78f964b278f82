"""The global batch sequence: shards are disjoint, cover each batch, ignore the rank count."""

import numpy as np
import pytest

from distbp.data.sampler import GlobalBatchSampler, shard_range


@pytest.mark.parametrize("count,size", [(12, 4), (37, 4), (3, 4), (0, 2), (5, 1), (10, 3)])
def test_shard_ranges_tile_the_batch(count, size):
    ranges = [shard_range(count, rank, size) for rank in range(size)]
    assert ranges[0][0] == 0 and ranges[-1][1] == count
    assert all(a[1] == b[0] for a, b in zip(ranges[:-1], ranges[1:], strict=True))
    lengths = [stop - start for start, stop in ranges]
    assert max(lengths) - min(lengths) <= 1
    expected = [len(part) for part in np.array_split(np.arange(count), size)]
    assert lengths == expected


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize("batch,drop_last", [(8, False), (7, False), (7, True), (3, False)])
def test_rank_shards_rebuild_the_global_batches(size, batch, drop_last):
    sampler = GlobalBatchSampler(30, batch, seed=5, drop_last=drop_last)
    serial = list(sampler.local_batches(epoch=2))
    per_rank = [list(sampler.local_batches(2, rank, size)) for rank in range(size)]
    assert len(serial) == sampler.steps_per_epoch == (30 // batch if drop_last
                                                     else -(-30 // batch))
    for step, (indices, count) in enumerate(serial):
        pieces = [per_rank[rank][step] for rank in range(size)]
        assert all(piece_count == count == len(indices) for _, piece_count in pieces)
        np.testing.assert_array_equal(np.concatenate([p for p, _ in pieces]), indices)
    seen = np.concatenate([indices for indices, _ in serial])
    assert len(np.unique(seen)) == len(seen)  # never a duplicate, never padding
    assert len(seen) == (30 - 30 % batch if drop_last else 30)


def test_epochs_are_seeded_permutations():
    sampler = GlobalBatchSampler(100, 10, seed=1)
    a, b = sampler.permutation(0), sampler.permutation(1)
    assert sorted(a) == list(range(100)) and not np.array_equal(a, b)
    np.testing.assert_array_equal(a, GlobalBatchSampler(100, 10, seed=1).permutation(0))
    assert not np.array_equal(a, GlobalBatchSampler(100, 10, seed=2).permutation(0))


def test_sampler_rejects_bad_sizes():
    with pytest.raises(ValueError, match="batch size must be > 0"):
        GlobalBatchSampler(10, 0, seed=0)
    with pytest.raises(ValueError, match="--drop-last with batch size 20 > 10"):
        GlobalBatchSampler(10, 20, seed=0, drop_last=True)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 6])
def test_micro_shards_are_whole_and_cover_the_batch(size):
    sampler = GlobalBatchSampler(100, 45, seed=2)  # batches of 45, 45, 10; shards of 7
    for step, (indices, count) in enumerate(sampler.local_batches(1)):
        pieces = [list(sampler.local_batches(1, rank, size, shard_size=7))[step][0]
                  for rank in range(size)]
        np.testing.assert_array_equal(np.concatenate(pieces), indices)
        starts = np.cumsum([0] + [len(p) for p in pieces[:-1]])
        assert all(start % 7 == 0 for start, piece in zip(starts, pieces, strict=True)
                   if len(piece))  # every rank with rows starts on a shard edge
        shards = -(-count // 7)
        assert [len(p) for p in pieces if len(p)] == [
            min(stop * 7, count) - start * 7 for start, stop in
            (shard_range(shards, r, size) for r in range(size)) if stop > start]
