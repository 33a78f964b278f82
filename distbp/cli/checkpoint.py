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
    """Write ckpt-<step>.npz atomically; delete all but the newest `keep`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(".ckpt-*.npz.tmp*"):  # left by a writer that was killed
        stale.unlink()
    arrays = {**arrays, "format": np.array(FORMAT)}
    arrays["checksum"] = np.array(checksum(arrays))
    target = directory / f"ckpt-{step:09d}.npz"
    temporary = directory / f".{target.name}.tmp{os.getpid()}"
    try:
        with open(temporary, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        publish(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    for old in sorted(list_checkpoints(directory))[:-keep] if keep > 0 else []:
        old.unlink()
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


def load(path: str | Path) -> dict[str, np.ndarray]:
    """Read and verify a checkpoint; any problem is one clear ConfigError."""
    path = Path(path)
    check(path.is_file(), f"checkpoint {path} does not exist")
    check(zipfile.is_zipfile(path), f"checkpoint {path} is truncated or not a checkpoint")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except ValueError as exc:
        raise ConfigError(f"checkpoint {path} refused: it contains pickled objects or "
                          f"object arrays ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
        raise ConfigError(f"checkpoint {path} is truncated or corrupt ({exc})") from None
    check("checksum" in arrays and "format" in arrays,
          f"checkpoint {path} is not a distbp checkpoint (no checksum)")
    check(int(arrays["format"]) == FORMAT, f"checkpoint {path} has format "
                                           f"{int(arrays['format'])}, this distbp reads {FORMAT}")
    check(str(arrays["checksum"]) == checksum(arrays),
          f"checkpoint {path} is corrupt (checksum mismatch)")
    return arrays


def encode(obj: object) -> np.ndarray:
    """A JSON-able object as a numpy string (no pickles)."""
    return np.array(json.dumps(obj, sort_keys=True, default=repr))


def decode(array: np.ndarray) -> object:
    """The object encode() stored."""
    return json.loads(str(array))
