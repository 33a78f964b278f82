"""IDX files (the MNIST family's format): validated, decompressed once, memory-mapped.

A .gz file is decompressed into the cache (distbp.data.cache), so all ranks on a node
share one uint8 copy through the page cache.
"""

from __future__ import annotations

import gzip
import math
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np

from distbp.data.cache import cache_name, default_cache_dir, fill_once
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


def expected_size(header: int, shape: tuple[int, ...]) -> int:
    """Bytes of a whole IDX file: header + one byte per element (exact, no overflow)."""
    return header + math.prod(shape)


def open_idx(path: str | Path, ndim: int, cache_dir: str | Path | None = None) -> np.ndarray:
    """A read-only uint8 memory map of an IDX file (.gz is decompressed once to a cache)."""
    path = Path(path)
    if path.suffix == ".gz":
        target = cache_name(path, "", Path(cache_dir or default_cache_dir()))
        path = fill_once(target, lambda temporary: decompress(path, temporary, ndim))
    try:
        with open(path, "rb") as handle:
            head = handle.read(4 + 4 * ndim)
        size = path.stat().st_size
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    header, shape = parse_header(path, head, ndim)
    expected = expected_size(header, shape)
    check(size == expected, f"{path}: file is {size} bytes but its header {shape} needs "
                            f"{expected} ({'truncated' if size < expected else 'trailing data'})")
    return np.memmap(path, dtype=np.uint8, mode="r", offset=header, shape=shape)


def decompress(source: Path, temporary: Path, ndim: int) -> None:
    """gunzip `source` into `temporary`, checked against the IDX header as it goes: never
    more bytes than the header declares, and errors name the user's file."""
    try:
        with gzip.open(source, "rb") as src, open(temporary, "wb") as dst:
            head = src.read(4 + 4 * ndim)
            header, shape = parse_header(source, head, ndim)
            expected = expected_size(header, shape)
            free = shutil.disk_usage(temporary.parent).free
            check(expected <= free, f"{source}: its header {shape} declares {expected:,} "
                                    f"bytes, more than the {free:,} free in the cache "
                                    f"{temporary.parent}")
            dst.write(head)
            written = len(head)
            while written < expected and (chunk := src.read(min(1 << 22, expected - written))):
                dst.write(chunk)
                written += len(chunk)
            check(written == expected and not src.read(1),
                  f"{source}: decompresses to {'fewer' if written < expected else 'more'} "
                  f"bytes than its header {shape} needs ({expected}): "
                  f"{'truncated' if written < expected else 'trailing data'}")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise ConfigError(f"{source}: corrupt or truncated gzip file ({exc})") from None
