"""Rank 0's side effects: the start line, a progress bar or epoch lines, metrics JSONL,
and the memory report of the summary.

Every method is a no-op on other ranks, so the training loop calls them unconditionally.
"""

from __future__ import annotations

import json
import math
import resource
import sys

from distbp.dist.comm import SerialComm
from distbp.dist.launch import launcher_on_terminal
from distbp.dist.reduction import Reduction
from distbp.errors import ConfigError


class Progress:
    """What rank 0 shows and records; every method is a no-op on the other ranks."""

    def __init__(self, is_root: bool, quiet: bool, metrics_path: str | None, append: bool,
                 steps_per_epoch: int, epochs: int) -> None:
        self.active = is_root
        self.quiet = quiet
        self.metrics_path = metrics_path if is_root else None
        if self.metrics_path:  # fail now, not after an hour of training
            open(self.metrics_path, "a" if append else "w").close()
        self.steps_per_epoch, self.epochs = steps_per_epoch, epochs
        self.bar = None
        self.last: dict = {}
        # a live line when a person watches: our stderr, or under mpirun the launcher's, is
        # a terminal (the ranks' output is a pipe to the launcher); plain lines otherwise
        self.use_bar = is_root and not quiet and has_tqdm() and (
            sys.stderr.isatty() or launcher_on_terminal())

    def start(self, line: str) -> None:
        """The start line: what runs where."""
        self.say(f"distbp: {line}")

    def say(self, line: str) -> None:
        """One line on rank 0 unless --quiet."""
        if self.active and not self.quiet:
            print(line, flush=True)

    def batch(self, loss: float) -> None:
        """After a step: advance the progress bar (on a terminal)."""
        if not self.use_bar:
            return
        if self.bar is None:
            from tqdm import tqdm
            self.bar = tqdm(total=self.steps_per_epoch, unit="batch", leave=False,
                            desc=f"epoch {self.last.get('epoch', 0) + 1}/{self.epochs}")
        self.bar.update()
        self.bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def epoch(self, record: dict) -> None:
        """After an epoch: its line, and its record in the metrics file."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.last = record
        eta = record["wall_time"] / record["epoch"] * (self.epochs - record["epoch"])
        quality = (f"test acc {record['test_accuracy']:.4f}" if "test_accuracy" in record
                   else f"test rmse {record['test_rmse']:.4f}")
        self.say(f"epoch {record['epoch']:3d}/{self.epochs}  train loss {record['train_loss']:.4f}"
                 f"  test loss {record['test_loss']:.4f}  {quality}"
                 f"  {record['samples_per_s']:,.0f} samples/s  {record['epoch_time']:.1f}s"
                 f"  ETA {eta:.0f}s")
        self.write(record)

    def write(self, record: dict) -> None:
        """Append one JSON record to the metrics file (rank 0, with --metrics)."""
        if self.metrics_path:
            try:
                with open(self.metrics_path, "a") as handle:
                    handle.write(json.dumps(record) + "\n")  # one write per record
            except OSError as exc:
                raise ConfigError(f"cannot write the metrics file {self.metrics_path}: "
                                  f"{exc.strerror}") from None

    def finish(self, summary: dict) -> dict:
        """The summary record and the final line; returns the summary."""
        summary = {**{k: v for k, v in self.last.items() if k != "event"}, **summary}
        self.write(summary)
        if self.active and "test_rmse" in summary:  # regression
            print(f"final test mse: {summary['test_mse']:.4f} (rmse {summary['test_rmse']:.4f}, "
                  f"{summary['test_count']} examples), {summary.get('wall_time', 0):.1f}s",
                  flush=True)
        elif self.active:
            print(f"final test accuracy: {summary.get('test_accuracy', float('nan')):.4f} "
                  f"({summary['test_correct']}/{summary['test_count']}), test loss "
                  f"{summary.get('test_loss', float('nan')):.4f}, "
                  f"{summary.get('wall_time', 0):.1f}s", flush=True)
        return summary


def memory_report(comm: SerialComm) -> dict[str, list[float]]:
    """Per rank: peak resident set size, and private (anonymous) memory now, in MB.

    Resident memory includes the memory-mapped dataset pages, which the ranks of a
    node share through the page cache; private memory is each rank's own.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes
    private = float("nan")
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("RssAnon:"):
                    private = int(line.split()[1]) / 1024
    except OSError:
        pass
    ranks = comm.allgather((round(peak, 1), round(private, 1)))
    return {"peak_rss_mb": [p for p, _ in ranks], "private_mb": [q for _, q in ranks]}


def has_tqdm() -> bool:
    """Whether the progress extra (tqdm) is installed."""
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def test_metrics(test: dict[str, float]) -> dict[str, float]:
    """The epoch record's test figures: loss and accuracy, or for regression MSE and RMSE."""
    if "accuracy" in test:
        return {"test_loss": test["loss"], "test_accuracy": test["accuracy"]}
    return {"test_loss": test["loss"], "test_mse": test["loss"],
            "test_rmse": math.sqrt(test["loss"])}


def norm_metrics(norms: list[float]) -> dict[str, float]:
    """Mean and max of the epoch's gradient norms before clipping (with --clip-grad-norm)."""
    return {"grad_norm_mean": sum(norms) / len(norms), "grad_norm_max": max(norms)} \
        if norms else {}


def wire_metrics(comm: SerialComm, reduction: Reduction, before: int,
                 steps: int) -> dict[str, float]:
    """Gradient bytes per step that left each node (its ranks' parts), across nodes."""
    sent = reduction.wire_bytes() - before
    return {"wire_bytes_per_step": sent / max(steps, 1)} if comm.nodes > 1 else {}
