"""`python -m distbp.train`: synchronous data-parallel training of an MLP.

    python -m distbp.train                     # one process
    mpirun -n 4 python -m distbp.train         # four ranks: same results, faster
    srun --mpi=pmi2 python -m distbp.train     # inside a Slurm allocation
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import traceback

import distbp
from distbp import datasets
from distbp.comm import SerialComm, fail, launcher_rank, print0, world
from distbp.config import parse_args
from distbp.data import Dataset, GlobalBatchSampler
from distbp.errors import CollectiveError, ConfigError, check
from distbp.parallel import DataParallel, check_same_everywhere, evaluate
from distbp.progress import Progress
from distbp.threads import auto_threads, set_blas_threads

ACTIVATION_LAYERS = {"relu": distbp.ReLU, "leaky_relu": distbp.LeakyReLU,
                     "tanh": distbp.Tanh, "sigmoid": distbp.Sigmoid}
FAULT_ENV = "DISTBP_FAULT_INJECT"  # "RANK:STEP": that rank raises at that global step


def build_model(args: argparse.Namespace, dataset: Dataset) -> distbp.Sequential:
    sizes = [dataset.x_train.shape[1], *args.hidden, dataset.classes]
    layers: list[distbp.Layer] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [distbp.Dense(fan_in, fan_out), ACTIVATION_LAYERS[args.activation]()]
    return distbp.Sequential(layers[:-1], seed=args.seed, dtype=args.dtype)


def build_optimizer(args: argparse.Namespace, model: distbp.Sequential) -> distbp.Optimizer:
    if args.optimizer == "sgd":
        return distbp.SGD(model, args.lr, momentum=args.momentum, nesterov=args.nesterov,
                          weight_decay=args.weight_decay)
    cls = distbp.Adam if args.optimizer == "adam" else distbp.AdamW
    return cls(model, args.lr, weight_decay=args.weight_decay)


def build_schedule(args: argparse.Namespace, lr: float, steps_per_epoch: int) -> distbp.Schedule:
    total = args.epochs * steps_per_epoch
    schedule = {"constant": lambda: distbp.Constant(lr),
                "step": lambda: distbp.StepDecay(lr, args.step_epochs * steps_per_epoch,
                                                 args.gamma),
                "cosine": lambda: distbp.Cosine(lr, total)}[args.schedule]()
    return distbp.Warmup(schedule, round(args.warmup_epochs * steps_per_epoch))


def global_batch_size(args: argparse.Namespace, comm: SerialComm) -> int:
    return args.batch_size_per_rank * comm.size if args.batch_size_per_rank else args.batch_size


def inject_fault(rank: int, step: int) -> None:
    """Fault injection for tests: DISTBP_FAULT_INJECT=RANK:STEP raises there."""
    target = os.environ.get(FAULT_ENV)
    if target and target == f"{rank}:{step}":
        raise RuntimeError(f"fault injected by {FAULT_ENV}={target} at step {step}")


def setup(args: argparse.Namespace, comm: SerialComm) -> dict:
    """Everything before the loop; a bad input on any rank is raised on all ranks."""
    dataset = datasets.load(args.dataset, args.data_dir, args.dtype)
    check(len(dataset.x_train) >= comm.size, f"{comm.size} ranks but only "
                                             f"{len(dataset.x_train)} training examples")
    model = build_model(args, dataset)
    batch = global_batch_size(args, comm)
    sampler = GlobalBatchSampler(len(dataset.x_train), batch, args.seed, args.drop_last)
    lr = args.lr * batch / args.base_batch_size if args.lr_scaling == "linear" else args.lr
    optimizer = build_optimizer(args, model)
    trainer = DataParallel(model, optimizer, distbp.SoftmaxCrossEntropy(), comm,
                           args.micro_batch_size)
    if args.metrics and comm.is_root:
        open(args.metrics, "w").close()  # fail now, not after an hour of training
    return dict(dataset=dataset, model=model, sampler=sampler, optimizer=optimizer,
                trainer=trainer, schedule=build_schedule(args, lr, sampler.steps_per_epoch),
                batch=batch)


def fingerprint(args, run) -> dict:
    return {"model": run["model"].describe(), "seed": args.seed, "batch_size": run["batch"],
            "dataset": run["dataset"].shapes(), "optimizer": run["optimizer"].settings(),
            "schedule": (args.schedule, args.epochs, args.warmup_epochs, args.lr_scaling),
            "drop_last": args.drop_last, "micro_batch_size": args.micro_batch_size}


def train(args: argparse.Namespace, comm: SerialComm) -> dict:
    """The training loop: forward -> backward -> Allreduce -> step -> (rank 0) log."""
    blas = set_blas_threads(args.blas_threads or auto_threads(comm.local_size))
    run = comm.run_agreed(lambda: setup(args, comm))
    data, model, trainer, optimizer = run["dataset"], run["model"], run["trainer"], run["optimizer"]
    trainer.broadcast_parameters()
    check_same_everywhere(comm, fingerprint(args, run))
    log = Progress(comm.is_root, args.quiet, args.metrics, run["sampler"].steps_per_epoch,
                   args.epochs)
    log.start(f"{comm.size} rank(s) on {comm.nodes} node(s), MPI: {comm.library}; "
              f"BLAS: {blas}; {model!r}, {model.num_parameters} parameters; dataset "
              f"{data.name} {len(data.x_train)}/{len(data.x_test)}; global batch {run['batch']}")
    step, started = 0, time.perf_counter()
    for epoch in range(args.epochs):
        epoch_start, loss_sum, seen = time.perf_counter(), 0.0, 0
        for indices, global_count in run["sampler"].local_batches(epoch, comm.rank, comm.size):
            optimizer.lr = run["schedule"](step)
            inject_fault(comm.rank, step)
            loss = trainer.step(data.x_train[indices], data.y_train[indices], global_count)
            loss_sum, seen, step = loss_sum + loss * global_count, seen + global_count, step + 1
            log.batch(loss)
        train_time = time.perf_counter() - epoch_start
        test = evaluate(model, trainer.loss, data.x_test, data.y_test, comm)
        log.epoch({"event": "epoch", "epoch": epoch + 1, "step": step, "lr": optimizer.lr,
                   "train_loss": loss_sum / seen, "test_loss": test["loss"],
                   "test_accuracy": test["accuracy"], "samples_per_s": seen / train_time,
                   "epoch_time": time.perf_counter() - epoch_start,
                   "wall_time": time.perf_counter() - started, "ranks": comm.size})
    peak_rss = comm.allgather(peak_rss_mb())
    return log.finish({"event": "summary", "test_correct": test["correct"],
                       "test_count": test["count"], "peak_rss_mb": peak_rss,
                       "config": vars(args)})


def peak_rss_mb() -> float:
    """This process's peak resident set size (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        comm = world()
    except ConfigError as exc:  # identical on every rank: each exits, rank 0 says why
        if launcher_rank() == 0:
            print(f"distbp.train: error: {exc}", file=sys.stderr)
        return 2
    try:
        train(args, comm)
    except CollectiveError as exc:  # raised on every rank together: no abort needed
        print0(comm, f"distbp.train: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # this rank alone, maybe: end every rank now
        if not isinstance(exc, ConfigError):
            traceback.print_exc()
        fail(comm, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
