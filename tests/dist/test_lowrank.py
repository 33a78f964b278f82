"""PowerSGD's low-rank sum (distbp.dist.lowrank): which tensors it compresses, that the
approximation and the nodes' errors always add up to the true sum, that a sum of low rank
comes through exactly, and that with error feedback a least-squares problem trains as far
as with exact sums. The `mpi` tests run under mpirun at 1-4 ranks, each rank a "node"."""

import numpy as np
import pytest

from distbp.dist.comm import SerialComm
from distbp.dist.lowrank import LowRankSum, Tensor, initial_q, plan, q_length

LAYOUT = [("0.weight", 0, (20, 30)), ("0.bias", 600, (30,)),  # compressed at rank 2
          ("1.weight", 630, (8, 3, 3, 3)),  # a conv weight: 8 x 27, compressed at rank 1
          ("2.weight", 846, (30, 4))]  # 120 < 2 x 2 x 34: summed exactly at rank 2
SIZE = 966


def lowrank(comm, rank: int = 2, dtype=np.float64) -> LowRankSum:
    tensors = plan(LAYOUT, rank, 1)[0]
    return LowRankSum(tensors, initial_q(q_length(tensors, rank), dtype), comm, rank)


def test_the_plan_compresses_only_matrices_that_shrink():
    tensors = {t.offset: t for t in plan(LAYOUT, 2, 1)[0]}
    assert [(t.rows, t.cols, t.matrix) for t in tensors.values()] == [
        (20, 30, True), (1, 30, False), (8, 27, True), (30, 4, False)]
    assert not plan(LAYOUT, 4, 1)[0][2].matrix  # 8 x 27 at rank 4: 216 < 2 x 4 x 35


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_plan_gives_every_tensor_to_one_worker(workers):
    owned = plan(LAYOUT, 2, workers)
    offsets = sorted(t.offset for mine in owned for t in mine)
    assert offsets == [0, 600, 630, 846]
    assert all(mine == sorted(mine, key=lambda t: t.offset) for mine in owned)
    assert owned[0][0].offset == 0  # the largest first, to the first worker


def test_a_tensor_is_a_view_of_the_flat_buffer():
    flat = np.arange(12.0)
    view = Tensor(2, 2, 3, True).view(flat)
    view[...] = -1
    assert flat.tolist() == [0, 1] + [-1] * 6 + [8, 9, 10, 11]


def everyone(comm, seed: int) -> list[np.ndarray]:
    return [np.random.default_rng(seed + 100 * r).standard_normal(SIZE) for r in range(comm.size)]


@pytest.mark.mpi
def test_approximation_and_errors_add_up_to_the_true_sum(comm):
    grads, errors = everyone(comm, 1), everyone(comm, 2)
    grad, error = grads[comm.rank].copy(), errors[comm.rank].copy()
    summer = lowrank(comm)
    for step in range(3):
        before = comm.allgather(grad + error)
        bias = np.sum(comm.allgather(grad[600:630]), axis=0)
        summer.sum(grad, error)
        after = grad + np.sum(comm.allgather(error), axis=0)  # approximation + every error
        assert np.allclose(after, np.sum(before, axis=0), rtol=0, atol=1e-12), step
        assert all(np.array_equal(grad, other) for other in comm.allgather(grad))
        assert np.allclose(grad[600:630], bias, rtol=0, atol=1e-12)  # summed exactly
        grad = everyone(comm, 10 + step)[comm.rank].copy()
    if comm.size == 1:
        assert summer.wire_bytes == 0
    else:  # P (20+8 rows x 2) + bias 30 + small matrix 120; Q (30+27 x 2)
        sent = 2 * (comm.size - 1) * (-(-(8 * 206) // comm.size) - (-(8 * 114) // comm.size))
        assert summer.wire_bytes == 3 * sent


@pytest.mark.mpi
def test_a_low_rank_sum_comes_through_exactly(comm):
    rng = np.random.default_rng(comm.rank)
    grad = rng.standard_normal(SIZE)
    u, v = np.random.default_rng(7).standard_normal((2, 20, 2))  # same span on every rank
    grad[:600] = (u @ rng.standard_normal((2, 30))).ravel()  # rank 2 on every rank
    exact = np.sum(comm.allgather(grad), axis=0)
    error = np.zeros(SIZE)
    lowrank(comm).sum(grad, error)
    assert np.allclose(grad[:600], exact[:600], atol=1e-12)
    # each node keeps its own gradient less its share of the sum: together, nothing
    assert np.allclose(np.sum(comm.allgather(error[:600]), axis=0), 0.0, atol=1e-12)


@pytest.mark.mpi
def test_warm_up_steps_sum_exactly(comm):
    grad = everyone(comm, 3)[comm.rank].copy()
    exact = np.sum(comm.allgather(grad), axis=0)
    lowrank(comm).exact(grad)
    assert np.allclose(grad, exact, rtol=0, atol=1e-12)


def least_squares(comm, compress: str, steps: int = 300) -> float:
    """SGD on |X W - Y|^2 / 2n for a full-rank 20 x 30 W, every rank its own rows."""
    rng = np.random.default_rng(5)
    target = rng.standard_normal((20, 30))
    x = np.random.default_rng(50 + comm.rank).standard_normal((64, 20))
    y = x @ target
    flat, error = np.zeros(SIZE), np.zeros(SIZE)
    weight = flat[:600].reshape(20, 30)  # the layout's first matrix; the rest stays zero
    summer = lowrank(comm)
    count = 64 * comm.size
    for _ in range(steps):
        grad = np.zeros(SIZE)
        grad[:600] = (x.T @ (x @ weight - y) / count).ravel()
        if compress == "exact":
            summer.exact(grad)
        else:
            summer.sum(grad, error)
            if compress == "no feedback":
                error[...] = 0
        flat -= 0.2 * grad
    loss = np.sum((x @ weight - y) ** 2) / count
    return float(np.sum(comm.allgather(loss)))


@pytest.mark.mpi
def test_with_error_feedback_a_rank_two_sum_trains_a_full_rank_matrix(comm):
    start = least_squares(comm, "exact", steps=0)
    exact, compressed = least_squares(comm, "exact"), least_squares(comm, "powersgd")
    without = least_squares(comm, "no feedback")
    assert exact < 1e-6 * start
    assert compressed < 1e-6 * start  # rank 2 of 20, yet it gets there
    assert without > 100 * compressed  # the error feedback is what makes it


def test_one_node_sums_over_itself():
    grad, error = np.random.default_rng(4).standard_normal((2, SIZE))
    total = grad + error
    summer = lowrank(SerialComm())
    summer.sum(grad, error)
    assert np.allclose(grad + error, total, atol=1e-12) and summer.wire_bytes == 0
