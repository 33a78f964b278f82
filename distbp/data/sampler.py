"""The global batch sequence and each rank's share of it.

An epoch is a seeded permutation of the training set cut into global batches; each
global batch is split into contiguous per-rank chunks whose sizes differ by at most one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from distbp.errors import check


def shard_range(count: int, rank: int, size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous chunk of `count` items (np.array_split order)."""
    base, extra = divmod(count, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


class GlobalBatchSampler:
    """Yields, per step, this rank's example indices and the global batch size.

    The sequence of global batches depends only on (num_examples, batch_size, seed,
    drop_last), never on the rank count: that is what makes -n 1 and -n 4 agree.
    """

    def __init__(self, num_examples: int, batch_size: int, seed: int,
                 drop_last: bool = False) -> None:
        check(num_examples > 0, f"the training set is empty ({num_examples} examples)")
        check(batch_size > 0, f"batch size must be > 0, got {batch_size}")
        check(not drop_last or batch_size <= num_examples,
              f"--drop-last with batch size {batch_size} > {num_examples} training "
              "examples leaves no batch")
        self.num_examples, self.batch_size = num_examples, batch_size
        self.seed, self.drop_last = seed, drop_last

    @property
    def steps_per_epoch(self) -> int:
        """Global batches per epoch (the last one partial unless drop_last)."""
        full, rest = divmod(self.num_examples, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def permutation(self, epoch: int) -> np.ndarray:
        """The example order of `epoch`: a function of (seed, epoch) only."""
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)

    def local_batches(self, epoch: int, rank: int = 0, size: int = 1,
                      shard_size: int | None = None) -> Iterator[tuple[np.ndarray, int]]:
        """(this rank's indices, global batch size) for each step of `epoch`.

        With shard_size, each global batch is cut into micro-shards of that many rows
        (the last may be shorter) and every rank gets whole, consecutive micro-shards.
        """
        order = self.permutation(epoch)
        for step in range(self.steps_per_epoch):
            batch = order[step * self.batch_size:(step + 1) * self.batch_size]
            if shard_size:
                first, last = shard_range(-(-len(batch) // shard_size), rank, size)
                start, stop = first * shard_size, min(last * shard_size, len(batch))
            else:
                start, stop = shard_range(len(batch), rank, size)
            yield batch[start:stop], len(batch)
