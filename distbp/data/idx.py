"""IDX files (the MNIST family's format): validated, decompressed once, memory-mapped.

A .gz file is decompressed into a cache file next to other ranks' view of it, so all
ranks on a node share one uint8 copy through the page cache.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from distbp.errors import ConfigError, check

UBYTE = 0x08


def parse_header(path: Path, head: bytes, ndim: int) -> tuple[int, tuple[int, ...]]:
    """(header length, shape) of an IDX file of unsigned bytes with `ndim` dimensions."""
    check(len(head) >= 4 and head[:2] == b"\0\0",
          f"{path}: not an IDX file (bad magic number {head[:4].hex() or 'empty'})")
    check(head[2] == UBYTE, f"{path}: IDX data type 0x{head[2]:02x} is not supported "
                            "(expected 0x08, unsigned bytes)")
    check(head[3] == ndim, f"{path}: expected {ndim} dimension(s), the header says {head[3]}")
    header = 4 + 4 * ndim
    check(len(head) >= header, f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", head[4:header])
    check(all(size > 0 for size in shape), f"{path}: IDX dimensions must be > 0, got {shape}")
    return header, shape


def open_idx(path: str | Path, ndim: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """A read-only uint8 memory map of an IDX file (.gz is decompressed once to a cache)."""
    path = Path(path)
    if path.suffix == ".gz":
        path = cached_copy(path, Path(cache_dir or default_cache_dir()))
    try:
        with open(path, "rb") as handle:
            head = handle.read(4 + 4 * ndim)
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    header, shape = parse_header(path, head, ndim)
    expected = header + int(np.prod(shape))
    check(size == expected, f"{path}: file is {size} bytes but its header {shape} needs "
                            f"{expected} ({'truncated' if size < expected else 'trailing data'})")
    return np.memmap(path, dtype=np.uint8, mode="r", offset=header, shape=shape)


def default_cache_dir() -> Path:
    """$DISTBP_CACHE, else $XDG_CACHE_HOME/distbp, else ~/.cache/distbp."""
    base = os.environ.get("DISTBP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "distbp")
    return Path(base)


def cached_copy(source: Path, cache_dir: Path) -> Path:
    """Decompress `source` into cache_dir once; concurrent ranks wait on a lock."""
    try:
        stat = source.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror}") from None
    key = hashlib.sha256(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    target = cache_dir / f"{source.name[:-3]}.{key.hexdigest()[:16]}"
    if target.exists():
        return target
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with open(cache_dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one rank decompresses, the others wait
            if not target.exists():
                decompress(source, target)
    except OSError as exc:
        raise ConfigError(f"cannot write the cache {cache_dir}: {exc.strerror} "
                          "(set DISTBP_CACHE to a writable directory)") from None
    return target


def decompress(source: Path, target: Path) -> None:
    """gunzip to a temporary file in the same directory, fsync, then rename."""
    temporary = target.with_name(f"{target.name}.tmp{os.getpid()}")
    try:
        with gzip.open(source, "rb") as src, open(temporary, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        os.replace(temporary, target)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ConfigError(f"{source}: corrupt or truncated gzip file ({exc})") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
