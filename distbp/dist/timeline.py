"""Where a step's time goes: data, forward, backward, communication wait, update.

The training loop and the data-parallel step call mark(phase) after each phase; with
--profile, rank 0 prints every rank's mean step at the end. Without it, mark is a no-op.
"""

from __future__ import annotations

import time

PHASES = ("data", "forward", "backward", "comm", "update")


class Timeline:
    """Adds the time since the previous mark to the named phase."""

    def __init__(self) -> None:
        self.totals = dict.fromkeys(PHASES, 0.0)
        self.steps = 0
        self.last = time.perf_counter()

    def start(self) -> None:
        """A step starts now."""
        self.last = time.perf_counter()

    def mark(self, phase: str) -> None:
        """The time since the last mark was spent in `phase`."""
        now = time.perf_counter()
        self.totals[phase] += now - self.last
        self.last = now

    def end_step(self) -> None:
        """A step ended."""
        self.steps += 1

    def means_ms(self) -> dict[str, float]:
        """Mean milliseconds per step in each phase."""
        return {phase: 1e3 * total / max(self.steps, 1) for phase, total in self.totals.items()}


class NoTimeline(Timeline):
    """The default: every method is a no-op."""

    def start(self) -> None:
        pass

    def mark(self, phase: str) -> None:
        pass

    def end_step(self) -> None:
        pass


OFF = NoTimeline()


def report(per_rank: list[dict[str, float]]) -> str:
    """A table: one row per rank, mean milliseconds per step in each phase."""
    lines = ["mean step per rank (ms): " + "  ".join(f"{p:>8}" for p in (*PHASES, "total"))]
    for rank, means in enumerate(per_rank):
        cells = [means[p] for p in PHASES] + [sum(means.values())]
        lines.append(f"rank {rank:<19}" + "  ".join(f"{c:8.3f}" for c in cells))
    waits = [means["comm"] for means in per_rank]
    if len(per_rank) > 1:
        late = min(range(len(waits)), key=waits.__getitem__)
        lines.append(f"communication wait: {min(waits):.3f} to {max(waits):.3f} ms; rank "
                     f"{late} waits least (the others wait for it)")
    return "\n".join(lines)
