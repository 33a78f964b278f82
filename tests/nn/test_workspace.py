"""Workspaces (distbp.nn.workspace): one buffer per (name, shape, dtype), reused."""

import numpy as np

from distbp.nn.workspace import FRESH, Workspace, chwb, from_chwb


def test_a_workspace_reuses_its_buffers():
    ws = Workspace()
    first = ws.array("out", (4, 3), np.float32)
    assert ws.array("out", (4, 3), np.float32) is first
    assert ws.array("out", (5, 3), np.float32) is not first  # another batch shape
    assert ws.array("out", (4, 3), np.float64) is not first
    assert ws.array("dx", (4, 3), np.float32) is not first
    assert len(ws.arrays) == 4


def test_fresh_allocates_every_time():
    assert FRESH.array("out", (2,), np.float32) is not FRESH.array("out", (2,), np.float32)


def test_like_keeps_the_memory_order_of_its_model():
    ws = Workspace()
    held = from_chwb(np.zeros((3, 4, 5, 2), np.float32))  # (B, C, H, W) held (C, H, W, B)
    out = ws.like("out", held)
    assert out.shape == (2, 3, 4, 5) and chwb(out).flags.c_contiguous
    assert ws.like("out", held) is out
    plain = ws.like("out", np.zeros((2, 3, 4, 5), np.float32))
    assert plain is not out and plain.flags.c_contiguous
    assert ws.like("mask", held, bool).dtype == bool
    assert chwb(FRESH.like("out", held)).flags.c_contiguous


def test_chwb_and_from_chwb_are_views_of_one_buffer():
    x = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)
    held = chwb(x)
    assert held.shape == (3, 4, 5, 2) and np.shares_memory(held, x)
    assert held[1, 2, 3, 0] == x[0, 1, 2, 3]
    np.testing.assert_array_equal(from_chwb(held), x)


def test_held_is_a_view_when_it_can_be_and_a_reused_copy_when_not():
    ws = Workspace()
    held = from_chwb(np.arange(120.0).reshape(3, 4, 5, 2))
    assert np.shares_memory(ws.held("x", held), held)
    plain = np.ascontiguousarray(held)  # the same values, (B, C, H, W) in memory
    copy = ws.held("x", plain)
    assert copy.flags.c_contiguous and not np.shares_memory(copy, plain)
    np.testing.assert_array_equal(copy, chwb(held))
    assert ws.held("x", plain * 2) is copy  # the buffer is reused, refilled
    np.testing.assert_array_equal(copy, 2 * chwb(held))
