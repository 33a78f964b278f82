"""Where training is (step, epoch, position in the epoch, running sums), and saving it
to or restoring it from a checkpoint, broadcast from rank 0 to every rank."""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distbp.cli import checkpoint
from distbp.dist.agreement import describe, differences
from distbp.dist.comm import SerialComm
from distbp.dist.step import DataParallel
from distbp.errors import ConfigError, check
from distbp.nn.sequential import Sequential
from distbp.optim.optimizers import Optimizer


@dataclass
class Position:
    """Where training is; saved in checkpoints, identical on every rank."""

    step: int = 0  # global steps done
    epoch: int = 0  # current epoch (from 0)
    step_in_epoch: int = 0  # steps of the current epoch done
    loss_sum: float = 0.0  # this epoch's sum of batch-mean losses x batch sizes
    seen: int = 0  # this epoch's examples
    skipped: int = 0  # steps skipped for non-finite values, whole run

    def advance(self, loss: float, count: int, skipped: bool) -> None:
        """One step done: its mean loss over `count` examples, or skipped (non-finite)."""
        self.step += 1
        self.step_in_epoch += 1
        self.skipped += skipped
        if not skipped:
            self.loss_sum += loss * count
            self.seen += count

    def next_epoch(self) -> None:
        """The epoch is done: the running sums start again."""
        self.epoch, self.step_in_epoch, self.loss_sum, self.seen = self.epoch + 1, 0, 0.0, 0


def check_outputs(args: Any, fingerprint: dict) -> None:
    """Rank 0, at start-up: the checkpoint directory and the metrics file can be written,
    and the directory belongs to this run (another run's checkpoints are refused; this
    run's, without --resume, too: starting over would mix two trajectories)."""
    if args.metrics:
        probe(Path(args.metrics), "--metrics")
    if args.save_model:
        probe(Path(args.save_model), "--save-model")
    if not args.checkpoint_dir:
        return
    directory = Path(args.checkpoint_dir)
    check(not directory.exists() or directory.is_dir(),
          f"--checkpoint-dir {directory} exists and is not a directory")
    created = next((p for p in reversed(directory.absolute().parents) if not p.exists()),
                   None if directory.exists() else directory.absolute())
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--checkpoint-dir {directory}: cannot create it "
                          f"({exc.strerror})") from None
    try:
        probe(directory / f".probe{os.getpid()}", "--checkpoint-dir")
    finally:
        if created is not None:  # leave nothing behind: the first save makes it again
            shutil.rmtree(created, ignore_errors=True)
    found = checkpoint.list_checkpoints(directory)
    for path in found:
        problems = differences([describe_saved(path), describe(fingerprint)], path.name,
                               lambda _: "this run")
        if problems:
            raise ConfigError(f"--checkpoint-dir {directory} holds another run's checkpoints "
                              f"({problems[0]}); give this run its own directory")
    if found and args.resume is None:
        raise ConfigError(f"--checkpoint-dir {directory} already holds this run's checkpoints "
                          f"(up to {found[-1].name}): continue with --resume, or start over in "
                          "an empty directory")


def probe(path: Path, flag: str) -> None:
    """Prove `path` writable by appending 4 KiB to it (and removing it again if it was
    new): a missing, read-only or full place is one line now, not after an hour."""
    check(not path.is_dir(), f"{flag} {path} is a directory")
    existed = path.exists()
    try:
        with open(path, "ab") as handle:
            if not existed:
                handle.write(bytes(4096))
                handle.flush()
                os.fsync(handle.fileno())
        if not existed:
            path.unlink()
    except OSError as exc:
        if not existed:
            path.unlink(missing_ok=True)
        raise ConfigError(f"{flag} {path}: cannot write there ({exc.strerror})") from None


def describe_saved(path: Path) -> dict:
    """The fingerprint a checkpoint was written with (read without loading the rest)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return checkpoint.decode(archive["fingerprint"])
    except Exception:  # noqa: BLE001 - any unreadable file is refused the same way
        raise ConfigError(f"--checkpoint-dir holds an unreadable checkpoint {path}: give this "
                          "run its own directory") from None


def save(directory: str, position: Position, trainer: DataParallel, fingerprint: dict,
         keep: int, extra: dict[str, np.ndarray] | None = None,
         trainer_state: dict[str, np.ndarray] | None = None) -> Path:
    """Rank 0: write the run's state as ckpt-<step>.npz in `directory`, keeping `keep`.
    A failed write (full disk, removed directory) is one ConfigError naming the path."""
    model, optimizer = trainer.model, trainer.optimizer
    arrays = {"params": model.flat_params, "model_state": model.flat_state,
              "opt_steps": np.array(optimizer.steps),
              "position": checkpoint.encode(asdict(position)),
              "fingerprint": checkpoint.encode(describe(fingerprint))}
    arrays.update({f"opt.{name}": value for name, value in optimizer.state().items()})
    if trainer_state is None:  # trainer.state() is collective: a job gathers it on every rank
        trainer_state = trainer.state()
    arrays.update({f"trainer.{name}": value for name, value in trainer_state.items()})
    arrays.update(extra or {})  # e.g. the input normalisation, for distbp.load_model
    try:
        return checkpoint.save(directory, position.step, arrays, keep)
    except OSError as exc:
        raise ConfigError(f"cannot write a checkpoint in {directory}: {exc.strerror}; the "
                          "previous checkpoint is intact") from None


def read(path: Path, model: Sequential, optimizer: Optimizer,
         fingerprint: dict) -> tuple[dict, dict]:
    """(arrays, metadata) of a checkpoint, once its fingerprint, shapes and metadata fit
    this run; anything malformed is one ConfigError naming the file."""
    arrays = checkpoint.load(path)
    for key in ("fingerprint", "position", "opt_steps"):
        check(key in arrays, f"checkpoint {path} has no '{key}'")
    saved = checkpoint.decode(arrays["fingerprint"], f"fingerprint in {path}")
    check(isinstance(saved, dict), f"malformed checkpoint fingerprint in {path}")
    problems = differences([saved, describe(fingerprint)], "the checkpoint",
                           lambda _: "this run")
    check(not problems, f"checkpoint {path} is from a different run: " + "; ".join(problems))
    expected = {"params": model.flat_params, "model_state": model.flat_state,
                **{f"opt.{k}": v for k, v in optimizer.state().items()}}
    for key, target in expected.items():
        check(key in arrays and arrays[key].shape == target.shape
              and arrays[key].dtype == target.dtype,
              f"checkpoint {path}: '{key}' does not fit this model and optimizer")
    return arrays, {"position": position_of(arrays["position"], path),
                    "opt_steps": count_of(arrays["opt_steps"], f"opt_steps in {path}"),
                    "trainer": {key[len("trainer."):]: value for key, value in arrays.items()
                                if key.startswith("trainer.")}}


def position_of(array: np.ndarray, path: Path) -> dict:
    """The saved position, checked field by field."""
    fields = checkpoint.decode(array, f"position in {path}")
    names = {name: kind for name, kind in Position.__annotations__.items()}
    check(isinstance(fields, dict) and set(fields) == set(names),
          f"malformed checkpoint position in {path}: {fields!r}")
    for name, kind in names.items():
        value = fields[name]
        valid = (isinstance(value, int) and not isinstance(value, bool) and value >= 0
                 if kind == "int" else isinstance(value, (int, float)))
        check(valid, f"malformed checkpoint position in {path}: {name} = {value!r}")
    return fields


def count_of(array: np.ndarray, what: str) -> int:
    """A saved non-negative integer scalar."""
    check(array.shape == () and array.dtype.kind in "iu" and int(array) >= 0,
          f"malformed checkpoint {what}: {array!r}")
    return int(array)


def restore(comm: SerialComm, path: Path | None, trainer: DataParallel,
            fingerprint: dict) -> Position | None:
    """Rank 0 reads and checks `path`; every rank receives its state. None: no path."""
    if path is None:
        return None
    model, optimizer = trainer.model, trainer.optimizer
    arrays, meta = comm.run_agreed(lambda: read(path, model, optimizer, fingerprint)
                                   if comm.is_root else (None, None))
    meta = comm.bcast(meta)
    comm.run_agreed(lambda: trainer.load_state(meta["trainer"]))  # every rank: same arrays
    if comm.is_root:
        model.flat_params[...] = arrays["params"]
        model.flat_state[...] = arrays["model_state"]
        for key, buffer in optimizer.state().items():
            buffer[...] = arrays[f"opt.{key}"]
    trainer.broadcast_state()
    optimizer.steps = meta["opt_steps"]
    return Position(**meta["position"])
