"""MPICH's shared-memory segments: their /dev/shm names are removed as soon as every rank
of a node has mapped them, so no abort path can leave them behind."""

from __future__ import annotations

import contextlib
import os


def release_segment_names(maps: str = "/proc/self/maps") -> list[str]:
    """Unlink the names of the /dev/shm segments MPICH mapped into this process.

    The memory stays until every rank unmaps it, but no name is left behind when the job
    dies without MPI_Finalize (an abort, a killed rank, Ctrl-C): MPICH's segments would
    otherwise pile up in /dev/shm until reboot. Returns the names removed."""
    removed = []
    try:
        with open(maps) as mapped:
            names = {token for line in mapped for token in line.split()
                     if token.startswith("/dev/shm/mpich_shm_")}
    except OSError:
        return removed
    for name in sorted(names):
        with contextlib.suppress(OSError):
            os.unlink(name)
            removed.append(name)
    return removed
