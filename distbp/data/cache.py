"""The decompression cache: a file derived from a user's file is written once per node
(concurrent ranks wait on a lock), under a name that only a complete, checked copy gets,
and memory-mapped by every rank, so the ranks of a node share one copy."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from distbp.errors import ConfigError


def default_cache_dir() -> Path:
    """$DISTBP_CACHE, else $XDG_CACHE_HOME/distbp, else ~/.cache/distbp."""
    base = os.environ.get("DISTBP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "distbp")
    return Path(base)


def cache_name(source: Path, suffix: str, cache_dir: Path) -> Path:
    """The cache file for `source` (by its path, size and time) with `suffix`."""
    try:
        stat = source.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return cache_dir / f"{source.name}.{key.hexdigest()[:16]}{suffix}"


def fill_once(target: Path, write: Callable[[Path], None]) -> Path:
    """Make `target` with write(temporary) unless it exists: one writer at a time, then
    fsync and rename; a failed write leaves nothing behind (and raises what it raised)."""
    if target.exists():
        return target
    cache_dir = target.parent
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one rank writes, the others wait
            if not target.exists():
                temporary = target.with_name(f"{target.name}.tmp{os.getpid()}")
                try:
                    write(temporary)
                    with open(temporary, "rb+") as handle:
                        os.fsync(handle.fileno())
                    os.replace(temporary, target)
                finally:
                    with contextlib.suppress(FileNotFoundError):
                        temporary.unlink()
    except OSError as exc:
        raise ConfigError(f"cannot write the cache {cache_dir}: {exc.strerror} "
                          "(set DISTBP_CACHE to a writable directory)") from None
    return target
