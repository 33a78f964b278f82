""".npz files read safely: every member's header is checked against its size before any
array is allocated (no pickles, no shape that the bytes cannot fill), and members can be
extracted once into the cache and memory-mapped instead of loaded by every rank."""

from __future__ import annotations

import math
import shutil
import zipfile
from pathlib import Path

import numpy as np

from distbp.data.cache import cache_name, default_cache_dir, fill_once
from distbp.errors import ConfigError, check


def members(path: Path, what: str) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """{name: (shape, dtype)} of every .npy member, each checked: a header that is not
    numpy's, an object dtype, or a size that does not match the shape is one line."""
    check(path.exists(), f"cannot read {path} as {what}: " + (
        "a broken symbolic link (or a loop of them)" if path.is_symlink() else "no such file"))
    check(not path.is_dir(), f"cannot read {path} as {what}: it is a directory")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"cannot read {path} as {what}: not a zip archive ({exc})") from None
    found = {}
    with archive:
        for info in archive.infolist():
            name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
            found[name] = member_header(path, archive, info)
    return found


def member_header(path: Path, archive: zipfile.ZipFile,
                  info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one member, checked against its uncompressed size."""
    where = f"{path}: member {info.filename}"
    try:
        with archive.open(info) as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(handle)
            offset = handle.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
        raise ConfigError(f"{where} is not a numpy array ({exc})") from None
    check(not dtype.hasobject, f"{where} refused: contains pickled objects (object dtype)")
    needed = math.prod(shape) * dtype.itemsize
    check(info.file_size - offset == needed,
          f"{where} is truncated or corrupt: its header {shape} {dtype} needs {needed:,} "
          f"bytes, it has {info.file_size - offset:,}")
    return tuple(shape), dtype


def load_arrays(path: Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of a checked .npz, read into memory (small files: checkpoints)."""
    found = members(path, what)
    missing = [key for key in keys if key not in found]
    check(not missing, f"{path}: missing array(s) {', '.join(missing)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in keys}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path} is truncated or corrupt ({exc})") from None


def mapped_arrays(path: Path, keys: tuple[str, ...],
                  cache_dir: Path | None = None) -> dict[str, np.ndarray]:
    """The arrays `keys` of a checked .npz, each extracted once into the cache as .npy
    and memory-mapped read-only: the ranks of a node share one copy."""
    found = members(path, ".npz")
    missing = [key for key in keys if key not in found]
    check(not missing, f"{path}: missing array(s) {', '.join(missing)} (needs "
                       f"{', '.join(keys)})")
    cache_dir = Path(cache_dir or default_cache_dir())
    needed = sum(math.prod(found[key][0]) * found[key][1].itemsize for key in keys)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(cache_dir).free
    except OSError as exc:
        raise ConfigError(f"cannot write the cache {cache_dir}: {exc.strerror} (set "
                          "DISTBP_CACHE to a writable directory)") from None
    check(needed <= free, f"{path}: its arrays take {needed:,} bytes uncompressed, more than "
                          f"the {free:,} free in the cache {cache_dir} (set DISTBP_CACHE)")
    arrays = {}
    for key in keys:
        target = cache_name(path, f".{key}.npy", cache_dir)
        fill_once(target, lambda temporary, key=key: extract(path, f"{key}.npy", temporary))
        arrays[key] = np.load(target, mmap_mode="r", allow_pickle=False)
    return arrays


def extract(path: Path, member: str, temporary: Path) -> None:
    """Copy one (already checked) member out of the archive, in chunks."""
    try:
        with zipfile.ZipFile(path) as archive, archive.open(member) as src, \
                open(temporary, "wb") as dst:
            while chunk := src.read(1 << 22):
                dst.write(chunk)
    except (zipfile.BadZipFile, EOFError, ValueError) as exc:
        raise ConfigError(f"{path}: member {member} is corrupt ({exc})") from None
