"""Workspaces (distbp.nn.workspace): one buffer per (name, shape, dtype), reused."""

import numpy as np

from distbp.nn.workspace import FRESH, Workspace


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
