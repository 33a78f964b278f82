"""A stall watchdog: a collective waiting longer than the timeout ends the whole job.

Each waiting rank reports the step and the operation it waits in, then aborts.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator


class Watchdog:
    """A daemon thread that aborts the job when a collective waits too long."""

    def __init__(self, timeout: float, rank: int, abort: Callable[[int], None]) -> None:
        self.timeout, self.rank, self.abort = timeout, rank, abort
        self.context = "start-up"
        self.waiting: tuple[str, float] | None = None
        self.thread = threading.Thread(target=self.watch, name="distbp-watchdog", daemon=True)
        self.thread.start()

    @contextlib.contextmanager
    def around(self, operation: str) -> Iterator[None]:
        """Time the collective run inside this context."""
        self.waiting = (operation, time.monotonic())
        try:
            yield
        finally:
            self.waiting = None

    def watch(self) -> None:
        """The thread: check the current wait a few times per timeout."""
        while True:
            time.sleep(min(1.0, self.timeout / 4))
            waiting = self.waiting
            if waiting and time.monotonic() - waiting[1] > self.timeout:
                operation, since = waiting
                waited = time.monotonic() - since
                os.write(2, (f"distbp: error on rank {self.rank}: stalled {waited:.0f}s in "
                             f"{operation} at {self.context} (--stall-timeout "
                             f"{self.timeout:g}s): another rank is stuck or dead; aborting the "
                             "job\n").encode())
                time.sleep(1.0)  # the other waiting ranks report too before the abort
                self.abort(3)
                return
