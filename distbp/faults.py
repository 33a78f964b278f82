"""Preemption (SIGTERM) as a flag the training loop polls, and fault injection for tests.

DISTBP_FAULT_INJECT=RANK:STEP[:KIND] makes that rank misbehave at that global step:
raise (default), nan (NaN in its input rows), hang (sleep), kill (SIGKILL itself),
sigterm (SIGTERM itself, as Slurm does before a preemption), kill-in-checkpoint (SIGKILL
itself in the middle of writing the checkpoint of that step).
"""

from __future__ import annotations

import os
import signal
import time

import numpy as np

FAULT_ENV = "DISTBP_FAULT_INJECT"
KINDS = ("raise", "nan", "hang", "kill", "sigterm", "kill-in-checkpoint")


class Preemption:
    """Turns SIGTERM into a request to stop after the current step (with a checkpoint)."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None

    def __enter__(self) -> Preemption:
        self.previous = signal.signal(signal.SIGTERM, self.handle)
        return self

    def handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc_info) -> None:
        signal.signal(signal.SIGTERM, self.previous or signal.SIG_DFL)


def planned_fault(rank: int, step: int) -> str | None:
    """The kind of fault planned for (rank, step), if any."""
    parts = os.environ.get(FAULT_ENV, "").split(":")
    if len(parts) >= 2 and parts[0] == str(rank) and parts[1] == str(step):
        return parts[2] if len(parts) > 2 and parts[2] in KINDS else "raise"
    return None


def inject_fault(rank: int, step: int, x: np.ndarray) -> np.ndarray:
    """Apply the planned fault, if any; returns the (possibly poisoned) input rows."""
    kind = planned_fault(rank, step)
    if kind == "raise":
        raise RuntimeError(f"fault injected by {FAULT_ENV}={os.environ[FAULT_ENV]} "
                           f"at step {step}")
    if kind == "nan" and len(x):
        x = np.array(x, copy=True)
        x[0, 0] = np.nan
    elif kind == "hang":
        time.sleep(3600)
    elif kind == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif kind == "sigterm":
        os.kill(os.getpid(), signal.SIGTERM)
    return x


def kill_if_planned_in_checkpoint(rank: int, step: int) -> None:
    """Called by the checkpoint writer after the data is written, before the rename."""
    if planned_fault(rank, step) == "kill-in-checkpoint":
        os.kill(os.getpid(), signal.SIGKILL)
