"""The adding problem (Hochreiter & Schmidhuber 1997): vanishing gradients, measured.

    mpirun -n 2 python scripts/adding_problem.py --cell lstm --steps-in-time 50
    mpirun -n 2 python scripts/adding_problem.py --cell rnn --steps-in-time 100 --clip 1

Each sequence has T steps of (value, marker): values uniform in [0, 1], exactly two
markers set (one in each half); the target is the sum of the two marked values. A model
that ignores the inputs predicts 1 and scores MSE 1/6 (about 0.167). A tanh RNN's
gradient through T steps vanishes, so it stays near that baseline; an LSTM's cell carries
it. Trained data-parallel: every rank takes its shard of each global batch, which is
generated from (seed, step), so the run is the same at any rank count. Prints the test
MSE as it goes and a final line.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import distbp
from distbp.dist.comm import print0
from distbp.dist.threads import auto_threads, set_blas_threads


def adding_batch(count: int, steps: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """x (count, steps, 2), y (count, 1)."""
    values = rng.uniform(0, 1, (count, steps))
    first = rng.integers(0, steps // 2, count)
    second = rng.integers(steps // 2, steps, count)
    markers = np.zeros((count, steps))
    markers[np.arange(count), first] = markers[np.arange(count), second] = 1
    x = np.stack([values, markers], axis=2)
    y = (values[np.arange(count), first] + values[np.arange(count), second])[:, None]
    return x.astype(np.float32), y.astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cell", choices=("rnn", "lstm"), default="lstm")
    parser.add_argument("--steps-in-time", type=int, default=50, help="T, the sequence length")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--clip", type=float, default=None, help="--clip-grad-norm")
    parser.add_argument("--every", type=int, default=250, help="test every N steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    comm = distbp.world()
    set_blas_threads(auto_threads(comm.local_size))
    cell = distbp.LSTM if args.cell == "lstm" else distbp.RNN
    model = distbp.Sequential([cell(2, args.hidden), distbp.Dense(args.hidden, 1)],
                              seed=args.seed)
    trainer = distbp.DataParallel(model, distbp.Adam(model, lr=args.lr), distbp.MSE(), comm,
                                  clip_grad_norm=args.clip)
    trainer.broadcast_parameters()
    x_test, y_test = adding_batch(2000, args.steps_in_time, np.random.default_rng(10**6))
    started, mse = time.perf_counter(), float("nan")
    for step in range(1, args.train_steps + 1):
        x, y = adding_batch(args.batch, args.steps_in_time, np.random.default_rng([args.seed,
                                                                                  step]))
        start, stop = distbp.data.shard_range(args.batch, comm.rank, comm.size)
        trainer.step(x[start:stop], y[start:stop], args.batch)
        if step % args.every == 0 or step == args.train_steps:
            mse = distbp.evaluate(model, trainer.loss, x_test, y_test, comm)["loss"]
            print0(comm, f"step {step:5d}  test MSE {mse:.4f}  "
                         f"{time.perf_counter() - started:.0f}s")
    print0(comm, f"adding problem T={args.steps_in_time} {args.cell}{args.hidden} clip "
                 f"{args.clip}: final test MSE {mse:.4f} (baseline 0.167) after "
                 f"{args.train_steps} steps of {args.batch}, {comm.size} rank(s), "
                 f"{time.perf_counter() - started:.0f}s")


if __name__ == "__main__":
    main()
