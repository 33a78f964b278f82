"""Where training is (step, epoch, position in the epoch, running sums), and saving it
to or restoring it from a checkpoint, broadcast from rank 0 to every rank."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from distbp.cli import checkpoint
from distbp.dist.agreement import describe, differences
from distbp.dist.comm import SerialComm
from distbp.dist.step import DataParallel
from distbp.errors import check
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


def save(directory: str, position: Position, trainer: DataParallel, fingerprint: dict,
         keep: int) -> Path:
    """Rank 0: write the run's state as ckpt-<step>.npz in `directory`, keeping `keep`."""
    model, optimizer = trainer.model, trainer.optimizer
    arrays = {"params": model.flat_params, "model_state": model.flat_state,
              "opt_steps": np.array(optimizer.steps),
              "position": checkpoint.encode(asdict(position)),
              "fingerprint": checkpoint.encode(describe(fingerprint))}
    arrays.update({f"opt.{name}": value for name, value in optimizer.state().items()})
    arrays.update({f"trainer.{name}": value for name, value in trainer.state().items()})
    return checkpoint.save(directory, position.step, arrays, keep)


def read(path: Path, model: Sequential, optimizer: Optimizer, fingerprint: dict) -> dict:
    """The checkpoint's arrays, once its fingerprint and shapes fit this run."""
    arrays = checkpoint.load(path)
    saved = checkpoint.decode(arrays["fingerprint"])
    problems = differences([saved, describe(fingerprint)], "the checkpoint",
                           lambda _: "this run")
    check(not problems, f"checkpoint {path} is from a different run: " + "; ".join(problems))
    expected = {"params": model.flat_params, "model_state": model.flat_state,
                **{f"opt.{k}": v for k, v in optimizer.state().items()}}
    for key, target in expected.items():
        check(key in arrays and arrays[key].shape == target.shape
              and arrays[key].dtype == target.dtype,
              f"checkpoint {path}: '{key}' does not fit this model and optimizer")
    return arrays


def restore(comm: SerialComm, path: Path | None, trainer: DataParallel,
            fingerprint: dict) -> Position | None:
    """Rank 0 reads and checks `path`; every rank receives its state. None: no path."""
    if path is None:
        return None
    model, optimizer = trainer.model, trainer.optimizer
    arrays = comm.run_agreed(lambda: read(path, model, optimizer, fingerprint)
                             if comm.is_root else None)
    meta = comm.bcast({"position": checkpoint.decode(arrays["position"]),
                       "opt_steps": int(arrays["opt_steps"]),
                       "trainer": {key[len("trainer."):]: value for key, value in arrays.items()
                                   if key.startswith("trainer.")}} if comm.is_root else None)
    trainer.load_state(meta["trainer"])
    if comm.is_root:
        model.flat_params[...] = arrays["params"]
        model.flat_state[...] = arrays["model_state"]
        for key, buffer in optimizer.state().items():
            buffer[...] = arrays[f"opt.{key}"]
    trainer.broadcast_state()
    optimizer.steps = meta["opt_steps"]
    return Position(**meta["position"])
