"""Step time of this tree's distbp against another checkout's, interleaved in one process.

    git worktree add /tmp/before <commit>
    python scripts/compare_versions.py --before /tmp/before [--models small,medium,wide]
    mpirun -n 2 python scripts/compare_versions.py --before /tmp/before

The other checkout's package is copied under the name distbp_before, so both versions
train the same MLP (synthetic float32 data, SGD with momentum, make_trainer's default
reduction) in the same process: blocks of --steps steps alternate between them, so
a shared machine's slow and fast spells hit both alike. Prints the median step time of
each, and the median and range of the per-block-pair ratios. OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE are dropped (the process re-executes itself without them).
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

MODELS = {"small": ([784, 128, 10], 64), "medium": ([784, 1024, 1024, 10], 256),
          "wide": ([784, 4096, 4096, 10], 128)}
TRAINER_MODULES = ("distbp.dist.choose", "distbp.trainer")  # where make_trainer lived


def renamed_copy(checkout: Path) -> Path:
    """checkout/distbp copied as <tmp>/distbp_before with its imports renamed."""
    root = Path(tempfile.mkdtemp(prefix="distbp-before-"))
    target = root / "distbp_before"
    shutil.copytree(checkout / "distbp", target)
    for path in target.rglob("*.py"):
        path.write_text(re.sub(r"\bdistbp\b", "distbp_before", path.read_text()))
    return root


def build(package: str, sizes: list[int], per_rank: int):
    """(trainer, x, y, global count) of one version."""
    distbp = importlib.import_module(package)
    comm = importlib.import_module(f"{package}.{'dist.comm' if package == 'distbp' else 'comm'}")
    world = getattr(distbp, "world", None) or comm.world
    make_trainer = None
    for name in TRAINER_MODULES:
        try:
            make_trainer = importlib.import_module(name.replace("distbp", package, 1)).make_trainer
            break
        except ImportError:
            continue
    import numpy as np

    communicator = world()
    layers: list = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [distbp.Dense(fan_in, fan_out), distbp.ReLU()]
    model = distbp.Sequential(layers[:-1], seed=0)
    trainer = make_trainer(model, distbp.SGD(model, lr=0.01, momentum=0.9),
                           distbp.SoftmaxCrossEntropy(), communicator)
    rng = np.random.default_rng(communicator.rank)
    x = rng.standard_normal((per_rank, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], per_rank)
    return trainer, communicator, x, y, per_rank * communicator.size


def block(trainer, comm, x, y, count, steps: int) -> float:
    comm.Barrier()
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step(x, y, count)
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="a checkout of the other version")
    parser.add_argument("--models", default="small,medium,wide")
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    if any(os.environ.pop(name, None) is not None
           for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")):
        os.execv(sys.executable, [sys.executable, *sys.argv])  # BLAS reads them at load
    sys.path.insert(0, str(renamed_copy(Path(args.before).resolve())))
    from distbp.dist.threads import auto_threads, set_blas_threads

    for name in args.models.split(","):
        sizes, per_rank = MODELS[name]
        versions = {package: build(package, sizes, per_rank)
                    for package in ("distbp_before", "distbp")}
        comm = versions["distbp"][1]
        blas = set_blas_threads(auto_threads(comm.local_size))
        times: dict[str, list[float]] = {package: [] for package in versions}
        for index in range(args.blocks + 1):  # the first pair warms up
            for package, (trainer, communicator, x, y, count) in versions.items():
                seconds = block(trainer, communicator, x, y, count, args.steps)
                if index:
                    times[package].append(seconds)
        ratios = sorted(a / b for a, b in zip(times["distbp"], times["distbp_before"],
                                              strict=True))
        if comm.rank == 0:
            before, after = (statistics.median(times[p]) for p in ("distbp_before", "distbp"))
            print(f"{name:7s} {comm.size} rank(s): step before {before * 1e3:8.2f} ms, after "
                  f"{after * 1e3:8.2f} ms; after/before median {statistics.median(ratios):.3f} "
                  f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}, {len(ratios)} block pairs); "
                  f"{type(versions['distbp'][0].reduction).__name__}", flush=True)
    if comm.rank == 0:
        print(f"BLAS: {blas}")


if __name__ == "__main__":
    main()
