"""Soak test: many steps of a small model; resident memory must stay flat.

    python scripts/soak.py [--steps 10000]            # one process
    mpirun -n 2 python scripts/soak.py                # per rank, printed by rank 0

Samples RSS (from /proc/self/statm) every --every steps after a warm-up and prints the
first and last samples, the maximum and the growth in percent. Exit code 1 if growth
exceeds --limit percent.
"""

from __future__ import annotations

import argparse
import os
import sys

import distbp
from distbp.data import GlobalBatchSampler, synthetic
from distbp.dist.comm import print0, world
from distbp.dist.step import DataParallel
from distbp.dist.threads import auto_threads, set_blas_threads


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10000)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--limit", type=float, default=5.0, help="allowed growth, percent")
    args = parser.parse_args()
    comm = world()
    set_blas_threads(auto_threads(comm.local_size))
    data = synthetic()
    model = distbp.Sequential([distbp.Dense(32, 64), distbp.ReLU(), distbp.Dense(64, 10)], seed=0)
    trainer = DataParallel(model, distbp.Adam(model, lr=1e-3), distbp.SoftmaxCrossEntropy(), comm)
    trainer.broadcast_parameters()
    sampler = GlobalBatchSampler(len(data.x_train), 64, seed=0)
    samples, step, epoch = [], 0, 0
    while step < args.steps:
        for rows, count in sampler.local_batches(epoch, comm.rank, comm.size):
            trainer.step(data.x_train[rows], data.y_train[rows], count)
            step += 1
            if step >= args.warmup and step % args.every == 0:
                samples.append(rss_mb())
            if step >= args.steps:
                break
        epoch += 1
    everyone = comm.allgather(samples)
    worst = 0.0
    for rank, series in enumerate(everyone):
        growth = 100 * (series[-1] - series[0]) / series[0]
        worst = max(worst, growth)
        print0(comm, f"rank {rank}: {args.steps} steps, RSS first {series[0]:.1f} MB, last "
                     f"{series[-1]:.1f} MB, max {max(series):.1f} MB, growth {growth:+.2f}% "
                     f"({len(series)} samples)")
    print0(comm, f"{'PASS' if worst <= args.limit else 'FAIL'}: worst growth {worst:+.2f}% "
                 f"(limit {args.limit}%)")
    return 0 if worst <= args.limit else 1


if __name__ == "__main__":
    sys.exit(main())
