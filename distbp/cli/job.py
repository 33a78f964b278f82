"""`python -m distbp.train`: synchronous data-parallel training (MLPs, CNNs).

    python -m distbp.train                     # one process
    mpirun -n 4 python -m distbp.train         # four ranks: same results, faster
    srun --mpi=pmi2 python -m distbp.train     # inside a Slurm allocation
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np

from distbp.cli import checkpoint, modelfile, state
from distbp.cli.config import parse_args
from distbp.cli.preemption import EXIT_CODES, INTERRUPTED, Preemption, agreed_signal
from distbp.cli.progress import Progress, memory_report, norm_metrics, test_metrics, wire_metrics
from distbp.cli.run import Run, setup
from distbp.dist import timeline
from distbp.dist.agreement import check_same_everywhere
from distbp.dist.choose import make_reduction, reduction_name
from distbp.dist.comm import SerialComm, fail, print0, world
from distbp.dist.launch import check_launch, launcher_rank, slurm_description
from distbp.dist.threads import set_blas_threads
from distbp.errors import CollectiveError, ConfigError, check

SIGPIPE_EXIT = 141  # output closed by its reader, as a shell reports a SIGPIPE death


def prepare(args: argparse.Namespace, comm: SerialComm) -> tuple[Run, state.Position, Progress]:
    """Build, agree, check the output paths, restore: everything before the loop."""
    reduction = comm.run_agreed(lambda: make_reduction(
        reduction_name(args.reduce, args.exact, comm), comm, args.exact_shard_size,
        args.grad_compression,
        **({"powersgd_rank": args.powersgd_rank, "powersgd_warmup": args.powersgd_warmup}
           if args.grad_compression == "powersgd" else {})))
    blas = set_blas_threads(args.blas_threads or reduction.blas_threads(comm.local_size))
    run = comm.run_agreed(lambda: setup(args, comm, reduction))
    run.trainer.broadcast_parameters()
    check_same_everywhere(comm, run.fingerprint)
    comm.run_agreed(lambda: state.check_outputs(args, run.fingerprint) if comm.is_root else None)
    position = state.restore(comm, resume_path(args), run.trainer,
                             run.fingerprint) or state.Position()
    if args.init_from:  # trained parameters, fresh optimizer and schedule
        comm.run_agreed(lambda: init_from(args.init_from, run) if comm.is_root else None)
        run.trainer.broadcast_state()
    log = Progress(comm.is_root, args.quiet, args.metrics, args.resume is not None,
                   run.sampler.steps_per_epoch, args.epochs)
    log.start(start_line(comm, run, blas, position))
    return run, position, log


def train(args: argparse.Namespace, comm: SerialComm, stops: Preemption) -> int:
    """Prepare, then epochs of the loop; returns the exit code."""
    run, position, log = prepare(args, comm)
    if args.profile:
        run.trainer.timeline = timeline.Timeline()
    started, test, first_step = time.perf_counter(), None, position.step
    stopped = any(comm.allgather(stops.requested))  # a signal during start-up: every rank
    while position.epoch < args.epochs and not stopped:
        epoch_start, wire, step0 = time.perf_counter(), run.trainer.reduction.wire_bytes(), \
            position.step
        norms: list[float] = []  # the global gradient norm of each step, with clipping
        stopped, examples = train_epoch(args, comm, run, position, stops, log, norms)
        if stopped:
            break
        train_time = time.perf_counter() - epoch_start
        test = evaluate(run, comm)
        record = {"event": "epoch", "epoch": position.epoch + 1, "step": position.step,
                  "lr": run.optimizer.lr, "train_loss": position.loss_sum / max(position.seen, 1),
                  **test_metrics(test), **norm_metrics(norms),
                  **wire_metrics(comm, run.trainer.reduction, wire, position.step - step0),
                  "samples_per_s": examples / train_time, "skipped_steps": position.skipped,
                  "epoch_time": time.perf_counter() - epoch_start,
                  "wall_time": time.perf_counter() - started, "ranks": comm.size}
        comm.run_agreed(partial(log.epoch, record))  # a failed metrics write stops all ranks
        position.next_epoch()
        if args.checkpoint_epochs and position.epoch % args.checkpoint_epochs == 0:
            save_checkpoint(args, comm, run, position)
    if stopped:
        return stop(args, comm, run, position, stops, trained=position.step > first_step)
    if test is None:  # resumed a run that had already finished (e.g. a requeued job)
        log.say(f"the run is already complete (step {position.step}, epoch {position.epoch} of "
                f"{args.epochs}): nothing to train; its final metrics:")
        test = evaluate(run, comm)
    else:
        save_checkpoint(args, comm, run, position)
    if args.save_model:  # rank 0 writes; a failure stops every rank with one line
        comm.run_agreed(lambda: modelfile.save_model(args.save_model, run.model, run.dataset)
                        if comm.is_root else None)
    if args.profile:  # asked for explicitly: printed even with --quiet
        print0(comm, timeline.report(comm.allgather(run.trainer.timeline.means_ms())))
        if comm.nodes > 1:
            sent = wire_metrics(comm, run.trainer.reduction, 0, position.step - first_step)
            print0(comm, f"between nodes: {sent['wire_bytes_per_step'] / 1e6:.3f} MB of "
                         "gradients per step left each node")
    comm.run_agreed(partial(log.finish, {
        "event": "summary", **test_metrics(test), "test_count": test["count"],
        **({"test_correct": test["correct"]} if "correct" in test else {}),
        **memory_report(comm), "config": vars(args)}))
    return 0


def init_from(path: str, run: Run) -> None:
    """Rank 0: the run's parameters and model state from a saved model or checkpoint."""
    trained = modelfile.load_model(path)
    check([repr(layer) for layer in trained.layers] == [repr(layer) for layer in
                                                        run.model.layers],
          f"--init-from: {path} holds {trained!r}, but this run builds {run.model!r}")
    run.model.flat_params[...] = trained.flat_params
    run.model.flat_state[...] = trained.flat_state


def evaluate(run: Run, comm: SerialComm) -> dict[str, float]:
    """Loss and accuracy on the test set, as the run's reduction evaluates."""
    return run.trainer.reduction.evaluate(run.model, run.trainer.loss, run.dataset.x_test,
                                          run.dataset.y_test, comm)


def stop(args: argparse.Namespace, comm: SerialComm, run: Run, position: state.Position,
         stops: Preemption, trained: bool) -> int:
    """Every rank stops after the same step: checkpoint, one line, 75 or 130."""
    name = agreed_signal(comm.allgather(stops.signal_name)) or "SIGTERM"
    path = save_checkpoint(args, comm, run, position) if trained else None
    if not trained:
        saved = "stopped before training began; nothing to save"
    elif args.checkpoint_dir:
        saved = f"stopped after step {position.step}; checkpoint {path}; continue with --resume"
    else:
        saved = f"stopped after step {position.step}; nothing saved (no --checkpoint-dir)"
    print0(comm, f"distbp: {'interrupted' if name == 'SIGINT' else 'preempted'} ({name}): "
                 f"{saved}", file=sys.stderr)
    return EXIT_CODES[name]


def train_epoch(args: argparse.Namespace, comm: SerialComm, run: Run, position: state.Position,
                stops: Preemption, log: Progress, norms: list[float]) -> tuple[bool, int]:
    """The loop: forward -> backward -> reduce -> (clip) -> update. Returns (stopped,
    examples); appends each step's gradient norm to `norms` when clipping."""
    data, trainer = run.dataset, run.trainer
    batches = run.sampler.local_batches(position.epoch, comm.rank, comm.size,
                                        trainer.reduction.shard_size)
    examples = 0
    for indices, global_count in islice(batches, position.step_in_epoch, None):  # resume mid-epoch
        run.optimizer.lr = run.schedule(position.step)
        comm.set_context(f"step {position.step}")
        trainer.timeline.start()
        x, y = data.x_train[indices], data.y_train[indices]
        trainer.timeline.mark("data")
        result = trainer.step(x, y, global_count, stops.requested, indices, position.step)
        trainer.timeline.end_step()
        if result.nonfinite and args.on_nonfinite == "stop":
            raise CollectiveError(f"non-finite loss or gradient at step {position.step} (epoch "
                                  f"{position.epoch + 1}); stopped before updating, checkpoints "
                                  "are intact (--on-nonfinite skip skips such steps)")
        position.advance(result.loss, global_count, result.nonfinite)
        if result.grad_norm is not None:
            norms.append(result.grad_norm)
        examples += global_count
        log.batch(result.loss)
        if result.stop:
            return True, examples
        if args.checkpoint_steps and position.step % args.checkpoint_steps == 0:
            save_checkpoint(args, comm, run, position)
    return False, examples


def start_line(comm: SerialComm, run: Run, blas: str, position: state.Position) -> str:
    """Where and what runs: ranks, nodes, MPI, BLAS, model, data, batch, reduction."""
    slurm = slurm_description()
    data = run.dataset
    return (f"{comm.size} rank(s) on {comm.nodes} node(s){', ' + slurm if slurm else ''}, "
            f"MPI: {comm.library}; BLAS: {blas}; {run.model!r}, {run.model.num_parameters} "
            f"parameters; dataset {data.name} {len(data.x_train)}/{len(data.x_test)}; global "
            f"batch {run.batch}; {run.trainer.reduction.describe()}"
            + (f" (--grad-compression {codec}: one node, no wire; the sum stays exact)"
               if (codec := run.fingerprint.get("grad_compression")) and comm.nodes == 1
               else "")
            + (f"; resumed at step {position.step}" if position.step else ""))


def resume_path(args: argparse.Namespace) -> Path | None:
    """The checkpoint --resume names: 'latest' in --checkpoint-dir, or a path."""
    if args.resume is None:
        return None
    return checkpoint.latest(args.checkpoint_dir) if args.resume == "latest" else Path(args.resume)


def save_checkpoint(args: argparse.Namespace, comm: SerialComm, run: Run,
                    position: state.Position) -> Path | None:
    """Rank 0 writes; a failed write (full disk) stops every rank with one line."""
    if not args.checkpoint_dir:
        return None
    extra = {"normalization": np.array(modelfile.normalization_of(run.dataset))}
    trainer_state = run.trainer.state()  # collective: e.g. every node's PowerSGD error
    return comm.run_agreed(lambda: state.save(args.checkpoint_dir, position, run.trainer,
                                              run.fingerprint, args.keep_checkpoints, extra,
                                              trainer_state)
                           if comm.is_root else None)  # a failed write stops every rank


def main(argv: list[str] | None = None) -> int:
    """The job's exit code: 0 done, 2 bad input, 75 preempted, 130 interrupted, 141 output
    closed."""
    comm: SerialComm | None = None
    with Preemption(abort=lambda code: (comm or SerialComm()).Abort(code)) as stops:
        try:
            args = parse_args(argv)
            comm = world(args.stall_timeout)  # the watchdog covers every collective
            check_launch(comm.size)
        except ConfigError as exc:  # identical on every rank: each exits, rank 0 says why
            if launcher_rank() == 0:
                print(f"distbp.train: error: {exc}", file=sys.stderr)
            return 2
        try:
            return train(args, comm, stops)
        except CollectiveError as exc:  # raised on every rank together: no abort needed
            print0(comm, f"distbp.train: error: {exc}", file=sys.stderr)
            return 2
        except BrokenPipeError:  # the reader went away (e.g. `| head`): end quietly, as Unix does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            if comm.size > 1:
                comm.Abort(SIGPIPE_EXIT)
            return SIGPIPE_EXIT
        except KeyboardInterrupt:  # only before the handler was installed
            print0(comm, "distbp: interrupted (SIGINT)", file=sys.stderr)
            if comm.size > 1:
                comm.Abort(INTERRUPTED)
            return INTERRUPTED
        except Exception as exc:  # this rank alone, maybe: end every rank now
            fail(comm, exc, code=2 if isinstance(exc, ConfigError) else 1)
    return 0
