"""Will the run fit? An estimate of the memory a run needs, made before anything large is
allocated, against what this machine can give (MemAvailable, the cgroup's limit)."""

from __future__ import annotations

import math
from pathlib import Path

from distbp.errors import check

GB = 1e9
BUFFERS = {"sgd": 4, "adam": 5, "adamw": 5}  # flat buffers: params, grads, sync, state


def needed_bytes(param_count: int, activations: int, batch: int, itemsize: int,
                 optimizer: str) -> tuple[int, int]:
    """(bytes of the flat buffers, bytes of the activations of a batch) of one rank: each
    activation is kept for backward, and kernels hold about two more of its size."""
    return (param_count * itemsize * (BUFFERS.get(optimizer, 6) + 1),
            3 * activations * batch * itemsize)


def available_bytes(meminfo: str = "/proc/meminfo",
                    cgroup: str = "/sys/fs/cgroup") -> tuple[int, str]:
    """(bytes this process may still allocate, where that figure comes from)."""
    best, source = math.inf, "unknown"
    try:
        for line in Path(meminfo).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                best, source = int(line.split()[1]) * 1024, "MemAvailable"
    except OSError:
        pass
    try:
        limit = Path(cgroup, "memory.max").read_text().strip()
        used = int(Path(cgroup, "memory.current").read_text())
        if limit != "max" and int(limit) - used < best:
            best, source = int(limit) - used, "the cgroup's memory.max"
    except (OSError, ValueError):
        pass
    return int(best) if best != math.inf else 1 << 62, source


def check_fits(param_count: int, activations: int, batch: int, itemsize: int, optimizer: str,
               ranks_here: int) -> None:
    """One line naming the numbers when this node's ranks together would need more memory
    than the machine can give."""
    buffers, acts = needed_bytes(param_count, activations, batch, itemsize, optimizer)
    total = (buffers + acts) * ranks_here
    free, source = available_bytes()
    check(total <= free,
          f"the run needs about {total / GB:,.1f} GB ({param_count:,} parameters: "
          f"{buffers / GB:,.1f} GB with gradients and optimizer state; activations of "
          f"{batch} examples: {acts / GB:,.1f} GB; x {ranks_here} rank(s) on this node) but "
          f"this machine can give {free / GB:,.1f} GB ({source}): use a smaller model or batch")
