"""`python -m distbp.predict MODEL --dataset fashion-mnist|file.npz [--output preds.npy]`:
a trained model's predictions on a test set: accuracy, per-class precision and recall,
the confusion matrix (regression: MSE and RMSE). Under mpirun the rows are split over
the ranks and the counts summed exactly."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import numpy as np

from distbp.cli.modelfile import load_model
from distbp.data.loaders import load
from distbp.data.sampler import shard_range
from distbp.dist.comm import SerialComm, print0, world
from distbp.errors import CollectiveError, ConfigError


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m distbp.predict", description=__doc__)
    parser.add_argument("model", help="a --save-model file or a checkpoint")
    parser.add_argument("--dataset", required=True, help="fashion-mnist, mnist or FILE.npz")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--output", metavar="PREDS.npy", help="rank 0 writes the predictions")
    parser.add_argument("--plot", metavar="PNG", help="the confusion matrix as a picture")
    parser.add_argument("--batch-size", type=int, default=1024)
    return parser.parse_args(argv)


def predict(args: argparse.Namespace, comm: SerialComm) -> list[str]:
    """Report lines (rank 0's are the ones printed); writes --output and --plot."""
    model = comm.run_agreed(lambda: load_model(args.model))
    data = comm.run_agreed(lambda: load(args.dataset, args.data_dir, model.dtype))
    x, y = getattr(data.x_test, "raw", data.x_test), data.y_test  # raw: predict normalises
    start, stop = shard_range(len(x), comm.rank, comm.size)
    mine = comm.run_agreed(lambda: model.predict(x[start:stop], args.batch_size))
    if args.output:  # only then does anyone need all the predictions, and only rank 0
        everyone = comm.allgather(mine)
        if comm.is_root:
            temporary = f"{args.output}.tmp{os.getpid()}.npy"
            np.save(temporary, np.concatenate(everyone))
            os.replace(temporary, args.output)
    if model.task != "probabilities":  # squared-error sums and counts, summed over ranks
        totals = np.array([float(np.sum((mine - y[start:stop]) ** 2, dtype=np.float64)),
                           float(mine.size)])
        comm.Allreduce(totals)
        mse = totals[0] / max(totals[1], 1.0)
        return [f"test MSE {mse:.6f}, RMSE {math.sqrt(mse):.6f} ({len(y)} examples)"]
    classes = max(comm.allgather(mine.shape[1]))  # a rank may hold no rows
    confusion = np.zeros((classes, classes), dtype=np.int64)  # true x predicted
    np.add.at(confusion, (y[start:stop], mine.argmax(axis=1)), 1)
    comm.Allreduce(confusion)  # exact counts at any rank count
    if args.plot and comm.is_root:
        draw(confusion, args.plot, Path(args.model).name)
    return report(confusion)


def report(confusion: np.ndarray) -> list[str]:
    """Accuracy, then per class: precision, recall, count; then the matrix."""
    correct, total = int(np.trace(confusion)), int(confusion.sum())
    lines = [f"accuracy {correct / max(total, 1):.4f} ({correct}/{total})",
             "class  precision  recall  examples"]
    for k in range(len(confusion)):
        predicted, actual = confusion[:, k].sum(), confusion[k].sum()
        lines.append(f"{k:5d}  {confusion[k, k] / max(predicted, 1):9.4f}  "
                     f"{confusion[k, k] / max(actual, 1):6.4f}  {actual:8d}")
    lines.append("confusion matrix (rows: true class, columns: predicted):")
    lines += [" ".join(f"{v:5d}" for v in row) for row in confusion]
    return lines


def draw(confusion: np.ndarray, output: str, title: str) -> None:
    """The confusion matrix as a PNG (needs the plot extra), written atomically."""
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install 'distbp[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(figsize=(6, 5.2))
    image = axes.imshow(confusion, cmap="Blues")
    fig.colorbar(image)
    axes.set(xlabel="predicted class", ylabel="true class", title=f"confusion: {title}")
    fig.tight_layout()
    temporary = f"{output}.tmp{os.getpid()}.png"
    fig.savefig(temporary, dpi=100)
    os.replace(temporary, output)


def main(argv: list[str] | None = None) -> int:
    """Exit code 0, or 2 with one line for bad input."""
    comm = world()
    try:
        args = parse(argv)
        for line in predict(args, comm):
            print0(comm, line)
    except CollectiveError as exc:
        print0(comm, f"distbp.predict: error: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"distbp.predict: error: {exc}", file=sys.stderr)
        return 2
    return 0
