"""Preemption: SIGTERM (Slurm's warning before a kill) as a flag the training loop polls."""

from __future__ import annotations

import signal
from typing import Any


class Preemption:
    """Turns SIGTERM into a request to stop after the current step (with a checkpoint)."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: Any = None

    def __enter__(self) -> Preemption:
        self.previous = signal.signal(signal.SIGTERM, self.handle)
        return self

    def handle(self, signum: int, frame: Any) -> None:
        """The SIGTERM handler: remember the request."""
        self.requested = True

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGTERM, self.previous or signal.SIG_DFL)
