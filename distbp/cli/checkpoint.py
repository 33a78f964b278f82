"""Checkpoints: one .npz of plain arrays (no pickles), written atomically, checksummed.

Rank 0 writes (temporary file in the same directory, flush + fsync, rename, fsync the
directory) and keeps the last K; rank 0 reads, checks, and broadcasts to every rank.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import zipfile
from pathlib import Path

import numpy as np

from distbp.data.npz import load_arrays, members
from distbp.errors import ConfigError, check

FORMAT = 1
PATTERN = re.compile(r"^ckpt-(\d{9})\.npz$")


def checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's name, dtype, shape and bytes (but the checksum's)."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        if key == "checksum":
            continue
        value = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save(directory: str | Path, step: int, arrays: dict[str, np.ndarray],
         keep: int = 3) -> Path:
    """Write ckpt-<step>.npz atomically; then delete the oldest others, keeping `keep`
    files in all: never the one just written, whatever the other files' steps."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".ckpt-*.npz.tmp*"):  # left by a writer that was killed
        stale.unlink()
    target = write_atomic(directory / f"ckpt-{step:09d}.npz", arrays)
    others = [path for path in list_checkpoints(directory) if path != target]
    for old in others[:max(len(others) - (keep - 1), 0)]:
        old.unlink()
    return target


def write_atomic(target: Path, arrays: dict[str, np.ndarray]) -> Path:
    """`arrays` with a format number and a checksum as the .npz `target`: written to a
    temporary file in the same directory, flushed, fsynced, then renamed (publish)."""
    arrays = {**arrays, "format": np.array(FORMAT)}
    arrays["checksum"] = np.array(checksum(arrays))
    temporary = target.with_name(f".{target.name}.tmp{os.getpid()}")
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        publish(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return target


def publish(temporary: Path, target: Path) -> None:
    """Rename the complete temporary file to its name, durably (the atomic moment)."""
    os.replace(temporary, target)
    fsync_directory(target.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def list_checkpoints(directory: str | Path) -> list[Path]:
    """The checkpoints in `directory`, oldest (lowest step) first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if PATTERN.match(p.name))


def latest(directory: str | Path) -> Path | None:
    """The newest checkpoint in `directory`, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def load(path: str | Path, what: str = "checkpoint") -> dict[str, np.ndarray]:
    """Read and verify a checkpoint (or a saved model: `what` names it in the messages);
    any problem is one clear ConfigError. Every member's header is checked against its
    size before anything is allocated."""
    path = Path(path)
    check(path.exists(), f"{what} {path} does not exist")
    check(not path.is_dir(), f"{what} {path} is a directory, not a checkpoint file (to "
                             "continue from the newest one in a directory, give it as "
                             "--checkpoint-dir and --resume without a path)")
    check(zipfile.is_zipfile(path), f"{what} {path} is truncated or not a {what}")
    try:
        found = members(path, "a checkpoint")
    except ConfigError as exc:
        if "pickled objects" in str(exc):
            raise ConfigError(f"{what} {path} refused: it contains pickled objects or "
                              f"object arrays ({exc})") from None
        raise ConfigError(f"{what} {path} is truncated or corrupt ({exc})") from None
    arrays = load_arrays(path, tuple(found), "a checkpoint")
    check("checksum" in arrays and "format" in arrays,
          f"{what} {path} is not a distbp {what} (no checksum)")
    check(arrays["format"].shape == () and arrays["format"].dtype.kind == "i"
          and int(arrays["format"]) == FORMAT,
          f"{what} {path} has format {arrays['format']!s}, this distbp reads {FORMAT}")
    check(str(arrays["checksum"]) == checksum(arrays),
          f"{what} {path} is corrupt (checksum mismatch)")
    return arrays


def encode(obj: object) -> np.ndarray:
    """A JSON-able object as a numpy string (no pickles)."""
    return np.array(json.dumps(obj, sort_keys=True, default=repr))


def decode(array: np.ndarray, what: str = "metadata") -> object:
    """The object encode() stored; anything else is one ConfigError."""
    try:
        check(array.shape == () and array.dtype.kind == "U", "not a string")
        return json.loads(str(array))
    except (ValueError, AttributeError) as exc:
        raise ConfigError(f"malformed checkpoint {what} ({exc})") from None
