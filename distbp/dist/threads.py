"""BLAS threads per rank: one thread when a node runs at least as many ranks as cores.

Oversubscribed BLAS threads make each step about 12x slower with 4 ranks on 2 cores.
"""

from __future__ import annotations

import os


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_threads(local_ranks: int, cores: int | None = None) -> int:
    """Cores shared evenly among this node's ranks, at least one each."""
    return max(1, (cores or available_cores()) // max(1, local_ranks))


def set_blas_threads(threads: int) -> str:
    """Limit BLAS to `threads` in this process; describe what runs (for the log)."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits
    except ImportError:
        return f"unknown BLAS (install threadpoolctl to set {threads} thread(s) per rank)"
    threadpool_limits(limits=threads, user_api="blas")
    pools = [p for p in threadpool_info() if p.get("user_api") == "blas"]
    return ", ".join(f"{p.get('internal_api')} {p.get('version')} "
                     f"({p.get('architecture')}, {p.get('num_threads')} thread(s))"
                     for p in pools) or "no BLAS found"
