"""Choosing the data-parallel step: exact (fixed point), shared memory, or Allreduce."""

from __future__ import annotations

from distbp.comm import SerialComm
from distbp.errors import check
from distbp.exact import ExactDataParallel
from distbp.losses import Loss
from distbp.model import Sequential
from distbp.optim import Optimizer
from distbp.parallel import DataParallel
from distbp.shared import SharedMemoryDataParallel


def make_trainer(model: Sequential, optimizer: Optimizer, loss: Loss, comm: SerialComm,
                 reduce: str = "auto", micro_batch_size: int | None = None,
                 exact: bool = False, exact_shard_size: int = 128, seed: int = 0) -> DataParallel:
    """reduce: 'shared' (within one node), 'allreduce', or 'auto' (shared on one node
    with several ranks, Allreduce otherwise). exact: ExactDataParallel (Allreduce).
    seed: of the Dropout masks."""
    check(reduce in ("auto", "shared", "allreduce"), f"unknown reduce '{reduce}'")
    if exact:
        trainer = ExactDataParallel(model, optimizer, loss, comm, exact_shard_size)
    elif reduce == "shared" or (reduce == "auto" and comm.size > 1 and comm.nodes == 1):
        trainer = SharedMemoryDataParallel(model, optimizer, loss, comm, micro_batch_size)
    else:
        trainer = DataParallel(model, optimizer, loss, comm, micro_batch_size)
    trainer.seed = seed
    return trainer
