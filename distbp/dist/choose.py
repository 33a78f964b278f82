"""Choosing the reduction by name: the one table of reductions, and `make_trainer`."""

from __future__ import annotations

from collections.abc import Callable

from distbp.dist.comm import SerialComm
from distbp.dist.exactshared import ExactSharedSum
from distbp.dist.fixedpoint import FixedPointSum
from distbp.dist.hierarchical import HierarchicalSum
from distbp.dist.powersgd import DEFAULT_RANK, DEFAULT_WARMUP, PowerSGDSum
from distbp.dist.reduction import AllreduceSum, Reduction
from distbp.dist.shared import SharedMemorySum
from distbp.dist.step import DataParallel
from distbp.errors import check
from distbp.nn.losses import Loss
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer


def hierarchical(compression: str = "none", rank: int = DEFAULT_RANK,
                 warmup: int = DEFAULT_WARMUP) -> Reduction:
    """The hierarchical reduction; compression between nodes: 'bf16', 'fp16', or
    'powersgd' (of rank `rank` after `warmup` exact steps)."""
    if compression == "powersgd":
        return PowerSGDSum(rank, warmup)
    return HierarchicalSum(compression)


# name -> factory(exact mode's micro-shard size[, gradient compression between nodes,
# PowerSGD's rank= and warmup=])
REDUCTIONS: dict[str, Callable[..., Reduction]] = {
    "allreduce": lambda shard_size, compression="none", **_: AllreduceSum(),
    "shared": lambda shard_size, compression="none", **_: SharedMemorySum(),
    "hierarchical": lambda shard_size, compression="none", **options:
        hierarchical(compression, **options),
    "exact": lambda shard_size, compression="none", **_: FixedPointSum(shard_size),
    "exact-shared": lambda shard_size, compression="none", **_: ExactSharedSum(shard_size),
}


def resolve(name: str, comm: SerialComm, compression: str = "none") -> str:
    """'auto': shared memory on one node with several ranks; across nodes with the same
    number (> 1) of ranks on each, hierarchical (1.10-1.17x the flat Allreduce at 2 nodes
    x 2 ranks on 1 and 10 Gbit/s links, cluster/README.md); else the flat Allreduce.
    With compression on several nodes: hierarchical, which compresses between nodes.
    Every rank resolves the same name (the sizes come from a collective)."""
    if compression != "none" and comm.nodes > 1:  # compression lives between nodes
        check(name in ("auto", "hierarchical"), f"--grad-compression {compression} "
              f"compresses between nodes in --reduce hierarchical, not with --reduce {name}")
        return "hierarchical"
    if name == "auto":
        if comm.size == 1:
            return "allreduce"
        if comm.nodes == 1:
            return "shared"
        sizes = set(comm.allgather(comm.local_size))
        return "hierarchical" if len(sizes) == 1 and sizes != {1} else "allreduce"
    check(name in REDUCTIONS, f"unknown reduce '{name}'")
    return name


def reduction_name(reduce: str, exact: bool, comm: SerialComm) -> str:
    """`reduce`, or with exact the fixed-point reduction: its integers summed in shared
    memory where `reduce` resolves to shared memory (one node, several ranks), else with
    an Allreduce. Collective for 'auto' across nodes (see resolve)."""
    if not exact:
        return reduce
    return "exact-shared" if resolve(reduce, comm) == "shared" else "exact"


def make_reduction(name: str, comm: SerialComm, shard_size: int = 128,
                   compression: str = "none", powersgd_rank: int = DEFAULT_RANK,
                   powersgd_warmup: int = DEFAULT_WARMUP) -> Reduction:
    """The reduction called `name` (or 'auto'); shard_size: exact mode's micro-shards;
    compression ('bf16', 'fp16', 'powersgd'): of the gradients between nodes (several
    nodes only); PowerSGD's rank and exact warm-up steps."""
    factory = REDUCTIONS[resolve(name, comm, compression)]
    if compression == "none":  # a one-argument factory (a user's reduction) still works
        return factory(shard_size)
    options = {"rank": powersgd_rank, "warmup": powersgd_warmup} \
        if compression == "powersgd" else {}
    return factory(shard_size, compression, **options)


def make_trainer(model: Sequential, optimizer: Optimizer, loss: Loss, comm: SerialComm,
                 reduce: str = "auto", micro_batch_size: int | None = None,
                 exact: bool = False, exact_shard_size: int = 128, seed: int = 0,
                 compression: str = "none", powersgd_rank: int = DEFAULT_RANK,
                 powersgd_warmup: int = DEFAULT_WARMUP) -> DataParallel:
    """The step `python -m distbp.train` uses. reduce: 'shared' (within one node),
    'allreduce', 'hierarchical' (across nodes) or 'auto'; exact: the fixed-point reduction
    (bitwise equal at any rank count; its integers summed in shared memory where 'auto' or
    'shared' resolves to shared memory). seed: of the Dropout masks. compression: 'bf16',
    'fp16' or 'powersgd' (rank powersgd_rank, after powersgd_warmup exact steps) between
    nodes."""
    reduction = make_reduction(reduction_name(reduce, exact, comm), comm, exact_shard_size,
                               compression, powersgd_rank, powersgd_warmup)
    return DataParallel(model, optimizer, loss, comm, micro_batch_size, reduction, seed)
