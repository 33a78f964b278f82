"""--grad-compression powersgd: the hierarchical reduction with PowerSGD between nodes.

Within a node the shared-memory sum stays exact; between nodes each weight matrix
travels as two rank-r factors with error feedback (distbp.dist.lowrank), after
`warmup` steps summed exactly.
"""

from __future__ import annotations

import numpy as np

from distbp.dist.comm import SerialComm
from distbp.dist.hierarchical import HierarchicalSum
from distbp.dist.lowrank import LowRankSum, initial_q, plan, q_length
from distbp.dist.reduction import FLOAT_SLOTS, StepResult, result_of
from distbp.errors import check
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer

Array = np.ndarray
DEFAULT_RANK = 4  # the factors' rank (PyTorch's hook: 1; 4 kept Fashion-MNIST's accuracy)
DEFAULT_WARMUP = 100  # exact steps first


class PowerSGDSum(HierarchicalSum):
    """node barrier -> the node's sum (shared memory, exact) -> each local rank sums its
    tensors over the nodes (LowRankSum; exactly for the first `warmup` steps) -> node
    barrier -> update of my part -> node barrier. Nodes may hold different numbers of
    ranks: the tensors go to the local ranks every node has.

    The node's summed gradient, its error and the Q factors live in the node's shared
    memory, in the flat buffer's layout; checkpoints keep every node's error (state() is
    collective) and resume exactly at the same node count (with another, node 0 takes
    the sum of the saved errors: the total still adds up)."""

    even_nodes = False

    def __init__(self, rank: int = DEFAULT_RANK, warmup: int = DEFAULT_WARMUP) -> None:
        check(isinstance(rank, int) and rank >= 1, f"--powersgd-rank must be >= 1, got {rank}")
        check(isinstance(warmup, int) and warmup >= 0,
              f"--powersgd-warmup must be >= 0, got {warmup}")
        super().__init__()  # no 16-bit codec: the factors below replace it
        self.compression, self.rank, self.warmup, self.steps = "powersgd", rank, warmup, 0

    def describe(self) -> str:
        return (f"HierarchicalSum (PowerSGD rank {self.rank} between nodes after "
                f"{self.warmup} exact steps)")

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        super().attach(model, optimizer, comm)
        size, dtype, leader = model.num_parameters, model.dtype, comm.local_rank == 0
        self.summed = comm.node_shared(size, dtype, single=True)[0]  # the node's sum
        self.reduced = self.summed[self.part]  # node_sum writes my part there
        self.error = comm.node_shared(size, dtype, single=True)[0]
        owned = plan(model.layout, self.rank, self.workers)
        lengths = [q_length(tensors, self.rank) for tensors in owned]
        self.q = comm.node_shared(sum(lengths), dtype, single=True)[0]
        node = comm.node_shared(1, np.int64, single=True)[0]
        if leader:  # shared windows start with undefined contents
            self.error[...] = 0
            self.q[...] = initial_q(len(self.q), dtype)
            node[0] = self.cross.rank  # the leaders' communicator ranks the nodes
        comm.node_barrier()
        self.node = int(node[0])
        self.counts_norm = self.node == 0  # node 0's parts make the global norm
        mine = comm.local_rank if comm.local_rank < self.workers else None
        start = sum(lengths[:mine or 0])
        q = self.q[start:start + (lengths[mine] if mine is not None else 0)]
        self.lowrank = LowRankSum(owned[mine] if mine is not None else [], q, self.cross,
                                  self.rank)
        self.head = np.zeros(FLOAT_SLOTS)

    def reduce(self) -> StepResult:
        """The statistics over every rank first (a NaN skips the step before anything is
        compressed), then my tensors over the nodes."""
        stats = self.node_sum()
        self.comm.node_barrier()  # the node's whole sum is in self.summed
        self.head[...] = stats if self.comm.local_rank == 0 else 0.0
        self.comm.Allreduce(self.head)
        result = result_of(self.head)
        if result.nonfinite or self.comm.nodes == 1:
            return result
        if self.steps == self.warmup:
            self.lowrank.end_warmup()
        if self.steps < self.warmup:
            self.lowrank.exact(self.summed)
        else:
            self.lowrank.sum(self.summed, self.error)
        self.steps += 1
        self.count(self.lowrank.wire_bytes)
        self.comm.node_barrier()  # every tensor summed: each rank may update its part
        return result

    def state(self) -> dict[str, Array]:
        """Collective: every node's error (gathered on the leaders), the Q factors, the
        step count. Rank 0's arrays are the checkpoint's."""
        arrays = {"powersgd_q": self.q.copy(), "powersgd_steps": np.array(self.steps)}
        if self.comm.local_rank == 0:
            errors = np.zeros((self.cross.size, len(self.error)), self.error.dtype)
            self.cross.Allgather(self.error, errors)
            arrays["powersgd_error"] = errors
        return arrays

    def load_state(self, arrays: dict[str, Array]) -> None:
        """Every rank gets the saved arrays; the leaders write their node's share."""
        errors, q = arrays.get("powersgd_error"), arrays.get("powersgd_q")
        check(errors is not None and q is not None and "powersgd_steps" in arrays,
              "the checkpoint has no PowerSGD state")
        check(q.shape == self.q.shape and errors.ndim == 2
              and errors.shape[1] == len(self.error),
              f"the checkpoint's PowerSGD state (Q {q.shape}, errors {errors.shape}) does "
              "not fit this model and --powersgd-rank")
        self.steps = int(arrays["powersgd_steps"])
        if self.comm.local_rank == 0:
            self.q[...] = q
            if len(errors) == self.cross.size:
                self.error[...] = errors[self.node]
            else:  # another node count: the total error carries over on node 0
                self.error[...] = errors.sum(axis=0) if self.node == 0 else 0.0
