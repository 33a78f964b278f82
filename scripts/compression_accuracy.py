"""How far gradient compression moves accuracy: the README's Fashion-MNIST command on the
cluster in a box (2 nodes x 1 rank), for each --grad-compression mode at several seeds.

    python scripts/compression_accuracy.py [--rate 1gbit] [--seeds 0,1]
        [--modes none,bf16,fp16,powersgd] [--epochs 30]                 (as root)

Prints each run's final test accuracy and its difference from the uncompressed run of
the same seed (every seed, not the best), and the wall time. The link rate changes the
time, not the numbers: the same Alltoall/Allgather or Allreduce runs at any rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster" / "local-cluster.sh"
README_FLAGS = ["--dataset", "fashion-mnist", "--hidden", "512,256", "--optimizer", "adamw",
                "--lr", "0.001", "--weight-decay", "0.05", "--warmup-epochs", "1", "--quiet"]


def run(mode: str, seed: int, epochs: int, workdir: Path) -> tuple[float, float]:
    metrics = workdir / f"{mode}-{seed}.jsonl"
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    start = time.perf_counter()
    out = subprocess.run(["bash", str(CLUSTER), "mpiexec", "-n", "2", "-ppn", "1",
                          sys.executable, "-m", "distbp.train", *README_FLAGS, "--epochs",
                          str(epochs), "--seed", str(seed), "--grad-compression", mode,
                          "--metrics", str(metrics)],
                         capture_output=True, text=True, env=env, cwd=workdir, timeout=7200)
    if out.returncode != 0:
        raise SystemExit(f"{mode} seed {seed} failed:\n{out.stderr[-3000:]}")
    summary = json.loads(metrics.read_text().splitlines()[-1])
    return summary["test_accuracy"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", default="1gbit")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--modes", default="none,bf16,fp16,powersgd")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    modes, seeds = args.modes.split(","), [int(s) for s in args.seeds.split(",")]
    subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True, check=True)
    subprocess.run(["bash", str(CLUSTER), "up", "2", "--rate", args.rate], check=True,
                   stdout=subprocess.DEVNULL)
    results: dict[tuple[str, int], tuple[float, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as workdir:
            for seed in seeds:
                for mode in modes:  # interleaved: a slow spell hits every mode alike
                    results[mode, seed] = run(mode, seed, args.epochs, Path(workdir))
                    accuracy, seconds = results[mode, seed]
                    print(f"seed {seed} {mode:5} test accuracy {accuracy:.4f} "
                          f"({seconds:.0f} s)", flush=True)
    finally:
        subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True)
    print(f"\n2 nodes x 1 rank, {args.rate} links, {args.epochs} epochs; accuracy (difference "
          "from none, points):")
    for mode in modes:
        cells = [f"seed {seed}: {results[mode, seed][0]:.4f} "
                 f"({100 * (results[mode, seed][0] - results['none', seed][0]):+.2f})"
                 for seed in seeds if ("none", seed) in results]
        print(f"  {mode:5} " + "; ".join(cells))


if __name__ == "__main__":
    main()
