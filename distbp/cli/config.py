"""Command-line flags and TOML config files for `python -m distbp.train`.

A config file uses the flags' names as keys (dashes or underscores); flags override it.
"""

from __future__ import annotations

import argparse
import math
import re
from pathlib import Path

from distbp.cli.tomlfile import defaults_from_file
from distbp.dist.powersgd import DEFAULT_RANK, DEFAULT_WARMUP
from distbp.errors import ConfigError, check

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "step", "cosine")


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one ConfigError line, not usage and exit 2."""

    def error(self, message: str):  # one clear line instead of usage + exit
        """Raise instead of printing usage and exiting."""
        raise ConfigError(f"{message} (see --help)")


GROUPS = {  # --help shows the flags in these groups, in this order
    "data": ("--config", "--dataset", "--data-dir", "--batch-size", "--batch-size-per-rank",
             "--drop-last", "--seed", "--dtype"),
    "model": ("--model", "--hidden", "--activation", "--loss"),
    "optimisation": ("--epochs", "--optimizer", "--lr", "--momentum", "--nesterov",
                     "--weight-decay", "--schedule", "--step-epochs", "--gamma",
                     "--warmup-epochs", "--lr-scaling", "--base-batch-size",
                     "--clip-grad-norm"),
    "parallelism": ("--reduce", "--grad-compression", "--powersgd-rank", "--powersgd-warmup",
                    "--exact", "--exact-shard-size",
                    "--micro-batch-size", "--blas-threads"),
    "checkpoints and models": ("--checkpoint-dir", "--checkpoint-every", "--keep-checkpoints",
                               "--resume", "--save-model", "--init-from"),
    "reliability": ("--stall-timeout", "--on-nonfinite"),
    "output": ("--metrics", "--quiet", "--profile"),
}


def build_parser() -> Parser:
    """Every flag of `python -m distbp.train`, in groups, each with its default."""
    p = Parser(prog="python -m distbp.train",
               formatter_class=argparse.ArgumentDefaultsHelpFormatter,
               description="Synchronous data-parallel training of MLPs, CNNs and recurrent "
                           "networks. Launch with `mpirun -n N python -m distbp.train ...`; "
                           "the rank count changes speed, not results.")
    made = {name: p.add_argument_group(name) for name in GROUPS}
    groups = {flag: made[name] for name, flags in GROUPS.items() for flag in flags}

    def add(flag: str, **kwargs: object) -> None:
        groups[flag].add_argument(flag, **kwargs)

    add("--config", metavar="FILE.toml", help="TOML file with the same keys as these flags")
    add("--dataset", default="synthetic",
        help="'synthetic' (embedded: 10 classes, each a union of 8 Gaussian blobs in 32-D, "
             "20,000/5,000 examples; a linear model reaches 45%%, the default MLP 87%%), "
             "'fashion-mnist', 'mnist' (IDX files), or a path to a .npz file (x_train, "
             "y_train, x_test, y_test)")
    add("--data-dir", default=None,
        help="where the IDX files are (else $DISTBP_DATA, else /usr/share/datasets/NAME)")
    add("--model", default="mlp",
        help="'mlp' (from --hidden and --activation), 'cnn' (conv32,bn,relu,pool2,conv64,bn,"
             "relu,pool2,flatten,dense256,bn,relu,dropout0.4), or a layer spec such as "
             "'conv16,relu,pool2,dense64,relu' (tokens: conv<C>[k<K>][s<S>][p<P>], pool<K>, "
             "gap, flatten, bn, dropout<P>, dense<N>, rnn<N>[seq], lstm<N>[seq], relu, "
             "leakyrelu, tanh, sigmoid; image rows are the time steps of a first recurrent "
             "layer); a final dense layer to the classes is added")
    add("--hidden", default="128,128",
        help="hidden layer sizes, comma-separated ('' or 'none' for a linear model)")
    add("--activation", default="relu", choices=ACTIVATIONS, help="of the mlp's hidden layers")
    add("--epochs", type=int, default=12, help="passes over the training set")
    add("--batch-size", type=int, default=128, help="GLOBAL batch size (all ranks together)")
    add("--batch-size-per-rank", type=int, default=None,
        help="convenience: global batch = this x ranks; results then depend on the rank count")
    add("--drop-last", action="store_true", help="drop the last incomplete global batch")
    add("--micro-batch-size", type=int, default=None,
        help="a rank processes its shard in chunks of at most this many examples")
    add("--loss", default="cross-entropy", choices=("cross-entropy", "mse"),
        help="cross-entropy on integer class labels; mse on float targets (regression, "
             "a user .npz with y_train of shape (N,) or (N, k)): reports test MSE and RMSE")
    add("--clip-grad-norm", type=float, default=None, metavar="X",
        help="clip the reduced gradient to a global L2 norm of X (the global batch's norm, "
             "so results stay independent of the rank count); the norm goes in the metrics")
    add("--optimizer", default="sgd", choices=OPTIMIZERS, help="as torch.optim's")
    add("--lr", type=float, default=0.05, help="peak learning rate")
    add("--momentum", type=float, default=0.9, help="SGD momentum")
    add("--nesterov", action="store_true", help="SGD with Nesterov momentum")
    add("--weight-decay", type=float, default=0.0, help="L2 for SGD/Adam, decoupled for AdamW")
    add("--schedule", default="cosine", choices=SCHEDULES, help="the learning rate over the run")
    add("--step-epochs", type=int, default=10, help="step schedule: epochs between decays")
    add("--gamma", type=float, default=0.1, help="step schedule: decay factor")
    add("--warmup-epochs", type=float, default=0.0, help="linear warmup (may be fractional)")
    add("--lr-scaling", default="none", choices=("none", "linear"),
        help="linear: lr x batch-size / base-batch-size (Goyal et al. 2017)")
    add("--base-batch-size", type=int, default=256, help="with --lr-scaling linear")
    add("--exact", action="store_true",
        help="bitwise-identical results at any rank count (fixed micro-shards, integer "
             "Allreduce, one BLAS thread per rank)")
    add("--exact-shard-size", type=int, default=128,
        help="exact mode: rows per micro-shard (ranks take whole micro-shards)")
    add("--reduce", default="auto", choices=("auto", "allreduce", "shared", "hierarchical"),
        help="gradient sum: 'shared' memory within one node (auto's choice there); across "
             "nodes 'hierarchical' (shared memory within each node, one Allreduce between "
             "nodes per part) or a flat 'allreduce'; auto picks as cluster/README.md says")
    add("--grad-compression", default="none", choices=("none", "bf16", "fp16", "powersgd"),
        help="gradients between nodes: bf16/fp16 as 16-bit values summed in float32 (half "
             "the bytes), powersgd as rank-r factors with error feedback (1-6%% of the "
             "bytes at rank 4); results then depend on the node count; within a node the "
             "sum stays exact. See cluster/README.md")
    add("--powersgd-rank", type=int, default=None,
        help="--grad-compression powersgd: rank of each weight matrix's factors (default "
             f"{DEFAULT_RANK})")
    add("--powersgd-warmup", type=int, default=None, metavar="STEPS",
        help="--grad-compression powersgd: exact steps before compressing "
             f"(default {DEFAULT_WARMUP})")
    add("--seed", type=int, default=0, help="initialisation, epoch order, dropout masks")
    add("--dtype", default="float32", choices=("float32", "float64"), help="compute dtype")
    add("--metrics", metavar="PATH", default=None, help="JSON lines: one record per epoch")
    add("--blas-threads", type=int, default=0,
        help="BLAS threads per rank (0: cores / ranks on this node, at least 1)")
    add("--quiet", action="store_true", help="print only the final result")
    add("--profile", action="store_true",
        help="at the end, print each rank's mean step: data, forward, backward, "
             "communication wait, update")
    add("--checkpoint-dir", default=None, help="where rank 0 writes checkpoints")
    add("--checkpoint-every", default="1epoch",
        help="N (steps) or Nepoch(s): how often to checkpoint (with --checkpoint-dir)")
    add("--keep-checkpoints", type=int, default=3, help="keep the newest K checkpoints")
    add("--save-model", metavar="PATH.npz", default=None,
        help="at the end, rank 0 writes the trained model here (distbp.load_model, "
             "python -m distbp.predict)")
    add("--init-from", metavar="MODEL_OR_CHECKPOINT", default=None,
        help="start from these trained parameters with a fresh optimizer and schedule "
             "(to extend or fine-tune a finished run; the model must match)")
    add("--resume", nargs="?", const="latest", default=None,
        help="continue from the newest checkpoint in --checkpoint-dir (if any), or from PATH")
    add("--stall-timeout", type=float, default=300.0,
        help="abort the job if a collective waits longer than this many seconds (0: never)")
    add("--on-nonfinite", default="stop", choices=("stop", "skip"),
        help="a NaN/inf loss or gradient on any rank: stop every rank, or skip that update")
    return p


def parse_hidden(text: object) -> list[int]:
    """'128,64' -> [128, 64]; '' or 'none' -> [] (a linear model)."""
    text = str(text).strip()
    if text.lower() in ("", "none"):
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--hidden must be comma-separated integers, got '{text}'") from None
    check(all(size > 0 for size in sizes), f"--hidden sizes must be > 0, got '{text}'")
    return sizes


def validate(args: argparse.Namespace) -> None:
    """Checks that argparse cannot express; derives checkpoint_steps/_epochs."""
    for flag in ("epochs", "batch_size", "base_batch_size", "step_epochs"):
        check(isinstance(getattr(args, flag), int) and getattr(args, flag) > 0,
              f"--{flag.replace('_', '-')} must be a positive integer, got {getattr(args, flag)!r}")
    for flag in ("batch_size_per_rank", "micro_batch_size"):
        value = getattr(args, flag)
        check(value is None or (isinstance(value, int) and value > 0),
              f"--{flag.replace('_', '-')} must be a positive integer, got {value!r}")
    check(isinstance(args.lr, (int, float)) and args.lr > 0,
          f"--lr must be a finite number > 0, got {args.lr!r}")
    for flag in ("lr", "momentum", "weight_decay", "warmup_epochs", "gamma", "stall_timeout"):
        value = getattr(args, flag)
        check(isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
              f"--{flag.replace('_', '-')} must be a finite number >= 0, got {value!r}")
    args.checkpoint_steps, args.checkpoint_epochs = parse_every(args.checkpoint_every)
    check(args.keep_checkpoints > 0, f"--keep-checkpoints must be > 0, got "
                                     f"{args.keep_checkpoints}")
    check(args.resume in (None, "latest") or Path(args.resume).exists(),
          f"--resume: checkpoint {args.resume} does not exist")
    check(args.resume in (None, "latest") or not Path(args.resume).is_dir(),
          f"--resume: {args.resume} is a directory; give a checkpoint file, or "
          f"--checkpoint-dir {args.resume} --resume to continue from its newest checkpoint")
    check(args.seed >= 0, f"--seed must be an integer >= 0, got {args.seed}")
    check(args.init_from is None or args.resume is None,
          "--init-from starts a new run from trained parameters; --resume continues one: "
          "give one of them")
    check(args.init_from is None or Path(args.init_from).is_file(),
          f"--init-from: {args.init_from} is not a file")
    check(args.save_model is None or Path(args.save_model).resolve().parent.is_dir(),
          f"--save-model: directory {Path(str(args.save_model)).resolve().parent} does not "
          "exist")
    check(args.clip_grad_norm is None or (math.isfinite(args.clip_grad_norm)
                                          and args.clip_grad_norm > 0),
          f"--clip-grad-norm must be a finite number > 0, got {args.clip_grad_norm!r}")
    check(args.resume != "latest" or args.checkpoint_dir is not None,
          "--resume without a path needs --checkpoint-dir")
    check(args.blas_threads >= 0, f"--blas-threads must be >= 0, got {args.blas_threads}")
    check(not args.nesterov or args.momentum > 0, "--nesterov needs --momentum > 0")
    check(args.exact_shard_size > 0, f"--exact-shard-size must be > 0, got {args.exact_shard_size}")
    for flag in ("powersgd_rank", "powersgd_warmup"):
        check(getattr(args, flag) is None or args.grad_compression == "powersgd",
              f"--{flag.replace('_', '-')} needs --grad-compression powersgd")
    check(args.powersgd_rank is None or args.powersgd_rank >= 1,
          f"--powersgd-rank must be >= 1, got {args.powersgd_rank}")
    check(args.powersgd_warmup is None or args.powersgd_warmup >= 0,
          f"--powersgd-warmup must be >= 0, got {args.powersgd_warmup}")
    if args.grad_compression == "powersgd":  # the defaults, here only
        args.powersgd_rank = DEFAULT_RANK if args.powersgd_rank is None else args.powersgd_rank
        if args.powersgd_warmup is None:
            args.powersgd_warmup = DEFAULT_WARMUP
    check(not (args.exact and args.grad_compression != "none"),
          f"--exact is bitwise exact at any rank count; --grad-compression "
          f"{args.grad_compression} rounds the gradients: choose one")
    check(not (args.exact and args.reduce in ("shared", "hierarchical")),
          f"--exact reduces in fixed point over MPI; it does not combine with --reduce "
          f"{args.reduce}")
    check(not (args.exact and args.micro_batch_size),
          "--micro-batch-size does not combine with --exact (its micro-shards, "
          "--exact-shard-size, already bound the memory)")
    if args.metrics:
        parent = Path(args.metrics).resolve().parent
        check(parent.is_dir(), f"--metrics: directory {parent} does not exist")


def parse_every(text: object) -> tuple[int, int]:
    """'500' -> every 500 steps; '2epochs' or '2epoch' -> every 2 epochs."""
    match = re.fullmatch(r"\s*(\d+)\s*(epochs?)?\s*", str(text))
    check(match is not None and int(match.group(1)) > 0,
          f"--checkpoint-every must be N (steps) or Nepochs with N > 0, got '{text}'")
    count = int(match.group(1))
    return (0, count) if match.group(2) else (count, 0)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Flags over config file over defaults; raises ConfigError with one clear line."""
    parser = build_parser()
    known, _ = parser.parse_known_args(argv)
    if known.config:
        defaults_from_file(parser, known.config)
    args = parser.parse_args(argv)
    args.hidden = parse_hidden(args.hidden)
    validate(args)
    return args
