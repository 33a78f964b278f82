"""`python -m distbp.plot metrics.jsonl [more.jsonl ...] -o curves.png`: training curves.

Left: train and test loss per epoch; right: test accuracy (or, for regression, RMSE).
Several files overlay, e.g. the same run at -n 1 and -n 4. Needs matplotlib (the `plot`
extra).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from distbp.errors import ConfigError, check


def read_epochs(path: str) -> list[dict]:
    """The epoch records of one metrics JSONL file."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ConfigError(f"{path}:{number}: not a JSON line") from None
        if record.get("event") == "epoch":
            records.append(record)
    check(bool(records), f"{path}: no epoch records (write one with --metrics)")
    return records


def draw(runs: dict[str, list[dict]], output: str, title: str | None) -> None:
    """Loss and accuracy curves of every run into `output` (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for index, (label, records) in enumerate(runs.items()):
        color = f"C{index}"
        epochs = [r["epoch"] for r in records]
        left.plot(epochs, [r["train_loss"] for r in records], "--", color=color,
                  label=f"{label} train")
        left.plot(epochs, [r["test_loss"] for r in records], "-", color=color,
                  label=f"{label} test")
        metric = "test_accuracy" if "test_accuracy" in records[-1] else "test_rmse"
        values = [r[metric] for r in records]
        best = max(values) if metric == "test_accuracy" else min(values)
        right.plot(epochs, values, "-o", ms=3, color=color,
                   label=f"{label} (final {values[-1]:.4f}, best {best:.4f})")
    name = "test accuracy" if metric == "test_accuracy" else "test RMSE"
    left.set(xlabel="epoch", ylabel="loss", title="loss")
    right.set(xlabel="epoch", ylabel=name, title=name)
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    temporary = f"{output}.tmp{os.getpid()}.png"
    fig.savefig(temporary, dpi=110)
    os.replace(temporary, output)  # never a half-written picture


def main(argv: list[str] | None = None) -> int:
    """`python -m distbp.plot`: exit code 0, or 2 with one line for bad input."""
    parser = argparse.ArgumentParser(prog="python -m distbp.plot", description=__doc__)
    parser.add_argument("metrics", nargs="+", help="metrics JSONL files from --metrics")
    parser.add_argument("-o", "--output", default="curves.png", help="PNG to write")
    parser.add_argument("--labels", help="comma-separated legend labels, one per file")
    parser.add_argument("--title")
    args = parser.parse_args(argv)
    try:
        labels = args.labels.split(",") if args.labels else [Path(p).stem for p in args.metrics]
        check(len(labels) == len(args.metrics), "--labels needs one label per metrics file")
        runs = {label: read_epochs(path) for label, path in zip(labels, args.metrics,
                                                                  strict=True)}
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("plotting needs matplotlib: pip install 'distbp[plot]'") from None
        draw(runs, args.output, args.title)
    except ConfigError as exc:
        print(f"distbp.plot: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
