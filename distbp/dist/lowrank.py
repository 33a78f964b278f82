"""PowerSGD's low-rank sum (Vogels et al., NeurIPS 2019), used between nodes by
--grad-compression powersgd (distbp.dist.powersgd).

Each node's summed gradient plus its error-feedback residual, M (rows x cols per weight
matrix), is sent as two thin factors instead of rows x cols values: P = M Q summed over
nodes and orthonormalised, then Q = M^T P summed over nodes; every node then holds the
rank-r approximation P Q^T of the sum over nodes. What the approximation missed stays on
the node as its error, M - P Q^T / nodes, and is added to its next gradient, so nothing
is lost, only delayed: the errors plus the approximation always add up to the true sum.
Q starts the next step where this one ended (one power iteration per step).

Biases, normalisation parameters and matrices too small to gain (rows x cols < 2 rank
(rows + cols), PyTorch's rule) are summed exactly in the same message as P. Whole tensors
are shared out among the local ranks (the same owner on every node), so each tensor's
factors travel on the communicator of its owner's local rank.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distbp.dist.comm import SerialComm

Array = np.ndarray
MIN_GAIN = 2  # compress a matrix only if it shrinks at least this many times


@dataclass(frozen=True)
class Tensor:
    """One parameter tensor of the flat buffer, seen as rows x cols."""

    offset: int
    rows: int
    cols: int
    matrix: bool  # compressed; else summed exactly

    @property
    def size(self) -> int:
        return self.rows * self.cols

    def view(self, flat: Array) -> Array:
        return flat[self.offset:self.offset + self.size].reshape(self.rows, self.cols)


def plan(layout: list[tuple[str, int, tuple[int, ...]]], rank: int,
         workers: int) -> list[list[Tensor]]:
    """The model's tensors (Sequential.layout) shared out among `workers` local ranks,
    largest first to the least loaded, each list in buffer order. Conv weights
    (out, in, k, k) are out x (in k k), as PyTorch's hook sees them."""
    tensors = []
    for _, offset, shape in layout:
        size = int(np.prod(shape))
        rows = shape[0] if len(shape) >= 2 else 1
        cols = size // rows if rows else 0
        gains = len(shape) >= 2 and rows * cols >= MIN_GAIN * rank * (rows + cols)
        tensors.append(Tensor(offset, rows, cols, gains))
    loads, owned = [0] * workers, [[] for _ in range(workers)]
    for tensor in sorted(tensors, key=lambda t: -t.size):  # stable: ties in buffer order
        worker = loads.index(min(loads))
        owned[worker].append(tensor)
        loads[worker] += tensor.size
    return [sorted(mine, key=lambda t: t.offset) for mine in owned]


def q_length(tensors: list[Tensor], rank: int) -> int:
    """Elements of the Q factors of `tensors` (cols x rank per matrix)."""
    return sum(t.cols * rank for t in tensors if t.matrix)


def initial_q(length: int, dtype: object) -> Array:
    """The first Q of every matrix: the same random numbers on every node."""
    return np.random.default_rng(0x5D6).standard_normal(length).astype(dtype)


def pieces(flat: Array, lengths: list[int]) -> list[Array]:
    """Consecutive views of `flat` of the given lengths."""
    edges = np.cumsum([0, *lengths])
    return [flat[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def orthonormalize(p: Array) -> None:
    """p (rows, rank) <- an orthonormal basis of its columns' span (in float64)."""
    if p.shape[0] < p.shape[1]:  # wide: QR gives only rows columns; never planned so
        raise ValueError(f"cannot orthonormalise {p.shape[1]} columns of length {p.shape[0]}")
    p[...] = np.linalg.qr(p.astype(np.float64))[0]


class LowRankSum:
    """The sum over `comm`'s ranks (one per node) of this worker's tensors of a flat
    gradient: matrices through rank-`rank` factors with error feedback, the rest exactly.

    q: this worker's Q factors (flat, kept between steps, e.g. in shared memory)."""

    def __init__(self, tensors: list[Tensor], q: Array, comm: SerialComm, rank: int) -> None:
        self.comm, self.rank = comm, rank
        self.matrices = [t for t in tensors if t.matrix]
        self.vectors = [t for t in tensors if not t.matrix]
        self.tensors = tensors
        lengths = [t.rows * rank for t in self.matrices] + [t.size for t in self.vectors]
        self.message = np.zeros(sum(lengths), dtype=q.dtype)  # P factors, then the rest
        parts = pieces(self.message, lengths)
        count = len(self.matrices)
        self.p = [part.reshape(t.rows, rank)
                  for t, part in zip(self.matrices, parts[:count], strict=True)]
        self.rest = parts[count:]
        self.q_flat = q
        self.q = [part.reshape(t.cols, rank) for t, part in
                  zip(self.matrices, pieces(q, [t.cols * rank for t in self.matrices]),
                      strict=True)]
        self.wire_bytes = 0  # sent by this rank, all steps
        self.exact_message: Array | None = None  # warm-up steps: every tensor exactly

    def sum(self, grad: Array, error: Array) -> None:
        """grad (flat) <- the sum over ranks of everyone's grad, for this worker's tensors;
        error (flat): this node's residual, added before and updated after."""
        for tensor, p, q in zip(self.matrices, self.p, self.q, strict=True):
            m = tensor.view(error)
            m += tensor.view(grad)  # M: the gradient plus what earlier steps missed
            np.matmul(m, q, out=p)
        for tensor, rest in zip(self.vectors, self.rest, strict=True):
            rest[...] = grad[tensor.offset:tensor.offset + tensor.size]
        self.allreduce(self.message)
        for tensor, rest in zip(self.vectors, self.rest, strict=True):
            grad[tensor.offset:tensor.offset + tensor.size] = rest
        for tensor, p, q in zip(self.matrices, self.p, self.q, strict=True):
            orthonormalize(p)
            np.matmul(tensor.view(error).T, p, out=q)
        self.allreduce(self.q_flat)
        share = 1.0 / self.comm.size
        for tensor, p, q in zip(self.matrices, self.p, self.q, strict=True):
            g, m = tensor.view(grad), tensor.view(error)
            np.matmul(p * share, q.T, out=g)  # this node's share of the approximation
            m -= g  # the error: M minus this node's share
            g *= self.comm.size  # the approximation of the sum over nodes

    def exact(self, grad: Array) -> None:
        """grad <- the exact sum over ranks for this worker's tensors (warm-up steps)."""
        if self.exact_message is None:
            self.exact_message = np.zeros(sum(t.size for t in self.tensors), grad.dtype)
        message, start = self.exact_message, 0
        for tensor in self.tensors:
            message[start:start + tensor.size] = grad[tensor.offset:tensor.offset + tensor.size]
            start += tensor.size
        self.allreduce(message)
        start = 0
        for tensor in self.tensors:
            grad[tensor.offset:tensor.offset + tensor.size] = message[start:start + tensor.size]
            start += tensor.size

    def end_warmup(self) -> None:
        """The warm-up's buffer is no longer needed."""
        self.exact_message = None

    def allreduce(self, buffer: Array) -> None:
        """In-place sum over the nodes, counting the bytes (reduce-scatter + allgather)."""
        if not buffer.size:
            return
        self.comm.Allreduce(buffer)
        nodes = self.comm.size
        self.wire_bytes += 2 * (nodes - 1) * -(-buffer.nbytes // nodes)
