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
from itertools import islice
from pathlib import Path

import distbp
from distbp import checkpoint, datasets, timeline, trainstate
from distbp.comm import SerialComm, fail, launcher_rank, print0, world
from distbp.config import parse_args
from distbp.data import Dataset, GlobalBatchSampler
from distbp.errors import CollectiveError, ConfigError, check
from distbp.exact import evaluate_exact
from distbp.faults import Preemption, inject_fault
from distbp.launch import check_launch, slurm_description
from distbp.parallel import check_same_everywhere, evaluate
from distbp.progress import Progress
from distbp.spec import CNN_SPEC, build_layers, mlp_spec
from distbp.threads import auto_threads, set_blas_threads
from distbp.trainer import make_trainer

PREEMPTED = 75  # exit code after SIGTERM: checkpoint written, run again with --resume
SIGPIPE_EXIT = 141  # output closed by its reader, as a shell reports a SIGPIPE death


def build_model(args: argparse.Namespace, dataset: Dataset) -> distbp.Sequential:
    """--model mlp (from --hidden, --activation), cnn, or a layer spec (distbp.spec)."""
    spec = {"mlp": mlp_spec(args.hidden, args.activation), "cnn": CNN_SPEC}.get(args.model,
                                                                               args.model)
    layers = build_layers(spec, (dataset.x_train.shape[1],), dataset.classes)
    return distbp.Sequential(layers, seed=args.seed, dtype=args.dtype)


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
    trainer = make_trainer(model, optimizer, distbp.SoftmaxCrossEntropy(), comm, args.reduce,
                           args.micro_batch_size, args.exact, args.exact_shard_size, args.seed)
    return dict(dataset=dataset, model=model, sampler=sampler, optimizer=optimizer,
                trainer=trainer, schedule=build_schedule(args, lr, sampler.steps_per_epoch),
                batch=batch)


def fingerprint(args, run) -> dict:
    return {"model": run["model"].describe(), "seed": args.seed, "batch_size": run["batch"],
            "dataset": run["dataset"].shapes(), "optimizer": run["optimizer"].settings(),
            "schedule": (args.schedule, args.epochs, args.warmup_epochs, args.lr_scaling),
            "drop_last": args.drop_last, "micro_batch_size": args.micro_batch_size,
            "exact": (args.exact, args.exact_shard_size if args.exact else None)}


def train(args: argparse.Namespace, comm: SerialComm) -> int:
    """Set up, agree, restore, then epochs of the loop; returns the exit code."""
    # exact mode: one BLAS thread, so a micro-shard's bits never depend on the rank count
    threads = args.blas_threads or (1 if args.exact else auto_threads(comm.local_size))
    blas = set_blas_threads(threads)
    run = comm.run_agreed(lambda: setup(args, comm))
    data, model, trainer, optimizer = run["dataset"], run["model"], run["trainer"], run["optimizer"]
    trainer.broadcast_parameters()
    run["fingerprint"] = fingerprint(args, run)
    check_same_everywhere(comm, run["fingerprint"])
    position = trainstate.restore(comm, resume_path(args), trainer,
                                  run["fingerprint"]) or trainstate.Position()
    log = run["log"] = Progress(comm.is_root, args.quiet, args.metrics, args.resume is not None,
                                run["sampler"].steps_per_epoch, args.epochs)
    slurm = slurm_description()
    log.start(f"{comm.size} rank(s) on {comm.nodes} node(s){', ' + slurm if slurm else ''}, "
              f"MPI: {comm.library}; "
              f"BLAS: {blas}; {model!r}, {model.num_parameters} parameters; dataset "
              f"{data.name} {len(data.x_train)}/{len(data.x_test)}; global batch {run['batch']}; "
              f"{type(trainer).__name__}"
              + (f"; resumed at step {position.step}" if position.step else ""))
    comm.watch_stalls(args.stall_timeout)
    if args.profile:
        trainer.timeline = timeline.Timeline()
    started = time.perf_counter()
    with Preemption() as preemption:
        while position.epoch < args.epochs:
            epoch_start = time.perf_counter()
            stopped, examples = train_epoch(args, comm, run, position, preemption)
            if stopped:
                path = save_checkpoint(args, comm, run, position)
                log.say(f"preempted (SIGTERM): stopped after step {position.step}; checkpoint "
                        f"{path}; continue with --resume")
                return PREEMPTED
            train_time = time.perf_counter() - epoch_start
            test = (evaluate_exact if args.exact else evaluate)(model, trainer.loss, data.x_test,
                                                                data.y_test, comm)
            log.epoch({"event": "epoch", "epoch": position.epoch + 1, "step": position.step,
                       "lr": optimizer.lr, "train_loss": position.loss_sum / max(position.seen, 1),
                       "test_loss": test["loss"], "test_accuracy": test["accuracy"],
                       "samples_per_s": examples / train_time, "skipped_steps": position.skipped,
                       "epoch_time": time.perf_counter() - epoch_start,
                       "wall_time": time.perf_counter() - started, "ranks": comm.size})
            position.next_epoch()
            if args.checkpoint_epochs and position.epoch % args.checkpoint_epochs == 0:
                save_checkpoint(args, comm, run, position)
    save_checkpoint(args, comm, run, position)
    if args.profile:  # asked for explicitly: printed even with --quiet
        print0(comm, timeline.report(comm.allgather(trainer.timeline.means_ms())))
    log.finish({"event": "summary", "test_correct": test["correct"], "test_count": test["count"],
                **memory_report(comm), "config": vars(args)})
    return 0


def train_epoch(args, comm, run, position, preemption) -> tuple[bool, int]:
    """The loop: forward -> backward -> Allreduce -> update. Returns (stopped, examples)."""
    data, trainer, optimizer = run["dataset"], run["trainer"], run["optimizer"]
    batches = run["sampler"].local_batches(position.epoch, comm.rank, comm.size,
                                           args.exact_shard_size if args.exact else None)
    examples = 0
    for indices, global_count in islice(batches, position.step_in_epoch, None):  # resume mid-epoch
        optimizer.lr = run["schedule"](position.step)
        comm.set_context(f"step {position.step}")
        trainer.timeline.start()
        x, y = data.x_train[indices], data.y_train[indices]
        x = inject_fault(comm.rank, position.step, x)
        trainer.timeline.mark("data")
        result = trainer.step(x, y, global_count, preemption.requested, indices, position.step)
        trainer.timeline.end_step()
        if result.nonfinite and args.on_nonfinite == "stop":
            raise CollectiveError(f"non-finite loss or gradient at step {position.step} (epoch "
                                  f"{position.epoch + 1}); stopped before updating, checkpoints "
                                  "are intact (--on-nonfinite skip skips such steps)")
        position.advance(result.loss, global_count, result.nonfinite)
        examples += global_count
        run["log"].batch(result.loss)
        if result.stop:
            return True, examples
        if args.checkpoint_steps and position.step % args.checkpoint_steps == 0:
            save_checkpoint(args, comm, run, position)
    return False, examples


def resume_path(args: argparse.Namespace) -> Path | None:
    if args.resume is None:
        return None
    return checkpoint.latest(args.checkpoint_dir) if args.resume == "latest" else Path(args.resume)


def save_checkpoint(args, comm, run, position) -> Path | None:
    """Rank 0 writes; the other ranks go on."""
    if not (args.checkpoint_dir and comm.is_root):
        return None
    return trainstate.save(args.checkpoint_dir, position, run["trainer"], run["fingerprint"],
                           args.keep_checkpoints)


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


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        comm = world()
        check_launch(comm.size)
    except ConfigError as exc:  # identical on every rank: each exits, rank 0 says why
        if launcher_rank() == 0:
            print(f"distbp.train: error: {exc}", file=sys.stderr)
        return 2
    try:
        return train(args, comm)
    except CollectiveError as exc:  # raised on every rank together: no abort needed
        print0(comm, f"distbp.train: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (e.g. `| head`): end quietly, as Unix does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        if comm.size > 1:
            comm.Abort(SIGPIPE_EXIT)
        return SIGPIPE_EXIT
    except Exception as exc:  # this rank alone, maybe: end every rank now
        fail(comm, exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
