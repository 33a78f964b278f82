"""Stop requests: SIGTERM (Slurm's warning before a kill) and SIGINT (Ctrl-C, which
mpirun forwards to every rank) become a flag the training loop polls, so every rank
stops after the same step, with a checkpoint. A second Ctrl-C ends the job at once."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

PREEMPTED = 75  # exit code after SIGTERM: checkpoint written, run again with --resume
INTERRUPTED = 130  # exit code after SIGINT, as a shell reports a Ctrl-C death
EXIT_CODES = {"SIGTERM": PREEMPTED, "SIGINT": INTERRUPTED}


class Preemption:
    """SIGTERM and SIGINT as a request to stop after the current step.

    `signal_name` is the first signal received ('' while none); `abort` ends the whole
    job on a second SIGINT (the user insists)."""

    def __init__(self, abort: Callable[[int], None] | None = None) -> None:
        self.signal_name = ""
        self.abort = abort or os._exit
        self.previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether this rank received a stop signal."""
        return bool(self.signal_name)

    def __enter__(self) -> Preemption:
        for number in (signal.SIGTERM, signal.SIGINT):
            self.previous[number] = signal.signal(number, self.handle)
        return self

    def handle(self, signum: int, frame: Any) -> None:
        """Remember the first signal; a second SIGINT aborts the job."""
        name = signal.Signals(signum).name
        if self.signal_name == "SIGINT" and name == "SIGINT":
            os.write(2, b"distbp: interrupted again: aborting the job\n")
            self.abort(INTERRUPTED)
        self.signal_name = self.signal_name or name

    def __exit__(self, *exc_info: object) -> None:
        for number, previous in self.previous.items():
            signal.signal(number, previous if previous is not None else signal.SIG_DFL)


def agreed_signal(names: list[str]) -> str:
    """The signal every rank reports, given each rank's: SIGINT wins over SIGTERM."""
    return "SIGINT" if "SIGINT" in names else "SIGTERM" if "SIGTERM" in names else ""
