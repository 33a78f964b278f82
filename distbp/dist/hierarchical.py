"""Across nodes: the shared-memory sum within each node, then one Allreduce between
nodes per part, then each rank's update of its part of its node's shared parameters.

Local rank r of every node owns the same part r of the gradient (the node's ranks have
summed it in shared memory), so the nodes exchange their partial sums part by part:
local_size Allreduces of size/local_size run side by side on the link, instead of every
rank sending the whole gradient. The update is SharedMemorySum's: one per node, split
local_size ways, into one shared copy of the parameters and optimizer state per node.
With compression ("bf16", "fp16"), the parts cross the wire as 16-bit codes summed in
float32 (distbp.dist.compress); the statistics, summed first, stay exact.
"""

from __future__ import annotations

import numpy as np

from distbp.dist.comm import SerialComm
from distbp.dist.compress import CODECS, CompressedSum, fp16_scale
from distbp.dist.reduction import FLOAT_SLOTS, StepResult, result_of
from distbp.dist.shared import SharedMemorySum
from distbp.errors import check
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer


class HierarchicalSum(SharedMemorySum):
    """node barrier -> node sum of my part -> Allreduce of my part between nodes ->
    update of my part -> node barrier."""

    across_nodes = True
    even_nodes = True  # the parts must line up across nodes (PowerSGDSum: whole tensors)

    def __init__(self, compression: str = "none") -> None:
        check(compression in ("none", *CODECS), f"unknown gradient compression '{compression}'")
        self.compression = compression
        self.compressor: CompressedSum | None = None
        self.sent = 0  # uncompressed: bytes an Allreduce of my part must send at least

    def describe(self) -> str:
        if self.compression == "none":
            return super().describe()
        return f"{super().describe()} ({self.compression} between nodes)"

    def attach(self, model: Sequential, optimizer: Optimizer, comm: SerialComm) -> None:
        """Needs the same number of ranks on every node (the parts must line up)."""
        sizes = comm.allgather(comm.local_size)
        check(not self.even_nodes or len(set(sizes)) == 1, "--reduce hierarchical needs the "
              f"same number of ranks on every node, got {sorted(set(sizes))} per node")
        self.workers = min(sizes)  # local ranks present on every node
        self.cross = comm.cross_node()  # local rank r of every node
        super().attach(model, optimizer, comm)
        self.counts_norm = self.cross.rank == 0  # every node holds the same parts
        self.counters = comm.node_shared(comm.local_size, np.int64, single=True)[0]
        if comm.local_rank == 0:  # shared windows start with undefined contents
            self.counters[...] = 0
        comm.node_barrier()
        if self.compression in CODECS and self.cross.size > 1:
            self.compressor = CompressedSum(self.compression, len(self.reduced), self.cross)
            self.head = np.zeros(FLOAT_SLOTS + 1)  # the statistics, then fp16's bound

    def reduce(self) -> StepResult:
        """The node's sum of my part and the statistics, then their sum over nodes."""
        stats = self.node_sum()
        if self.compressor is None:
            tail = self.wire[len(self.reduced):]
            tail[...] = stats
            self.cross.Allreduce(self.wire)
            nodes = self.cross.size  # reduce-scatter + allgather: 2 (n-1)/n of the part
            self.sent += 2 * (nodes - 1) * -(-self.wire.nbytes // nodes)
            self.count(self.sent)
            return result_of(tail.astype(np.float64))
        head, part, fp16 = self.head, self.reduced, self.compression == "fp16"
        head[:FLOAT_SLOTS] = stats
        head[-1] = max(float(part.max()), -float(part.min())) if fp16 and part.size else 0.0
        self.cross.Allreduce(head)  # exact statistics; the sum of the nodes' largest values
        result = result_of(head[:FLOAT_SLOTS])
        if result.nonfinite:  # caught before any value is encoded
            return result
        self.compressor.sum(part, fp16_scale(head[-1]) if fp16 else 1.0)
        self.count(self.compressor.wire_bytes)
        return result

    def count(self, sent: int) -> None:
        """This rank has sent `sent` bytes between nodes so far (its node's ranks see it)."""
        self.counters[self.comm.local_rank] = sent

    def wire_bytes(self) -> int:
        """Gradient bytes this rank's node has sent between nodes, all steps, summed over
        its ranks: counted when compressed, else the least any Allreduce algorithm sends
        (MPICH's does: the veth counters agree, cluster/README.md)."""
        return int(self.counters.sum())

    def broadcast_parameters(self, root: int = 0) -> None:
        """Node leaders receive root's shared parameters; their node sees them."""
        check(root == 0, "HierarchicalSum broadcasts from rank 0")
        if self.comm.local_rank == 0:
            self.cross.Bcast(self.model.flat_params)
        self.comm.node_barrier()

    def broadcast_state(self) -> None:
        """Model state to every rank; shared parameters and optimizer state to each node."""
        self.comm.Bcast(self.model.flat_state)
        if self.comm.local_rank == 0:
            self.cross.Bcast(self.model.flat_params)
            for buffer in self.optimizer.state().values():
                self.cross.Bcast(buffer)
        self.comm.node_barrier()
