"""Everything a training run is made of, built once from the flags: the dataset, model,
optimizer, schedule, sampler, the data-parallel step, and the configuration fingerprint."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from distbp.cli.memory import check_fits
from distbp.data.dataset import Dataset
from distbp.data.loaders import load
from distbp.data.sampler import GlobalBatchSampler
from distbp.dist.comm import SerialComm
from distbp.dist.reduction import Reduction
from distbp.dist.step import DataParallel
from distbp.errors import check
from distbp.nn.losses import MSE, Loss, SoftmaxCrossEntropy
from distbp.nn.sequential import Sequential
from distbp.nn.spec import CNN_SPEC, build_with_shapes, mlp_spec
from distbp.optim.optimizers import SGD, Adam, AdamW, Optimizer
from distbp.optim.schedules import Constant, Cosine, Schedule, StepDecay, Warmup


@dataclass
class Run:
    """The run's objects, identical in shape on every rank."""

    dataset: Dataset
    model: Sequential
    optimizer: Optimizer
    schedule: Schedule
    sampler: GlobalBatchSampler
    trainer: DataParallel
    batch: int  # the global batch size
    fingerprint: dict[str, Any]  # what every rank, and a checkpoint, must agree on


def build_model(args: argparse.Namespace, dataset: Dataset, batch: int,
                ranks_here: int) -> Sequential:
    """--model mlp (from --hidden, --activation), cnn, or a layer spec (distbp.nn.spec);
    refused in one line, before allocating, if it cannot fit in memory."""
    spec = {"mlp": mlp_spec(args.hidden, args.activation), "cnn": CNN_SPEC}.get(args.model,
                                                                               args.model)
    stack = build_with_shapes(spec, (dataset.x_train.shape[1],), dataset.classes)
    params = sum(math.prod(shape) for layer, _ in stack
                 for shape in layer.param_shapes().values())
    activations = sum(math.prod(shape) for _, shape in stack)
    check_fits(params, activations, batch, np.dtype(args.dtype).itemsize, args.optimizer,
               ranks_here)
    return Sequential([layer for layer, _ in stack], seed=args.seed, dtype=args.dtype)


def build_optimizer(args: argparse.Namespace, model: Sequential) -> Optimizer:
    """--optimizer sgd (momentum, nesterov), adam or adamw, with --weight-decay."""
    if args.optimizer == "sgd":
        return SGD(model, args.lr, momentum=args.momentum, nesterov=args.nesterov,
                   weight_decay=args.weight_decay)
    cls = Adam if args.optimizer == "adam" else AdamW
    return cls(model, args.lr, weight_decay=args.weight_decay)


def build_schedule(args: argparse.Namespace, lr: float, steps_per_epoch: int) -> Schedule:
    """--schedule over the whole run, wrapped in --warmup-epochs of linear warm-up."""
    total = args.epochs * steps_per_epoch
    schedule = {"constant": lambda: Constant(lr),
                "step": lambda: StepDecay(lr, args.step_epochs * steps_per_epoch, args.gamma),
                "cosine": lambda: Cosine(lr, total)}[args.schedule]()
    return Warmup(schedule, round(args.warmup_epochs * steps_per_epoch))


def make_loss(args: argparse.Namespace, dataset: Dataset) -> Loss:
    """--loss, checked against the dataset's targets (labels or float values)."""
    if args.loss == "mse":
        check(dataset.targets == "values", f"--loss mse needs float targets, but "
                                           f"{dataset.name}'s y_train holds integer class "
                                           "labels (use --loss cross-entropy)")
        return MSE()
    check(dataset.targets == "labels", f"{dataset.name}'s y_train holds float targets: "
                                       "regression needs --loss mse")
    return SoftmaxCrossEntropy()


def global_batch_size(args: argparse.Namespace, comm: SerialComm) -> int:
    """--batch-size, or --batch-size-per-rank x ranks."""
    return args.batch_size_per_rank * comm.size if args.batch_size_per_rank else args.batch_size


def setup(args: argparse.Namespace, comm: SerialComm, reduction: Reduction) -> Run:
    """Everything before the loop; a bad input raises ConfigError (on this rank)."""
    dataset = load(args.dataset, args.data_dir, args.dtype)
    check(len(dataset.x_train) >= comm.size, f"{comm.size} ranks but only "
                                             f"{len(dataset.x_train)} training examples")
    batch = global_batch_size(args, comm)
    model = build_model(args, dataset, -(-min(batch, len(dataset.x_train)) // comm.size),
                        comm.local_size)
    sampler = GlobalBatchSampler(len(dataset.x_train), batch, args.seed, args.drop_last)
    lr = args.lr * batch / args.base_batch_size if args.lr_scaling == "linear" else args.lr
    optimizer = build_optimizer(args, model)
    trainer = DataParallel(model, optimizer, make_loss(args, dataset), comm,
                           args.micro_batch_size, reduction, args.seed, args.clip_grad_norm)
    fingerprint = {
        "model": model.describe(), "seed": args.seed, "batch_size": batch,
        "dataset": dataset.shapes(), "optimizer": optimizer.settings(),
        "schedule": (args.schedule, args.epochs, args.warmup_epochs, args.lr_scaling),
        "drop_last": args.drop_last, "micro_batch_size": args.micro_batch_size,
        "exact": reduction.fingerprint(),
        # new settings join the fingerprint only when used: older checkpoints still resume
        **({"clip_grad_norm": args.clip_grad_norm} if args.clip_grad_norm else {}),
        **({"loss": args.loss} if args.loss != "cross-entropy" else {}),
        **({"grad_compression": args.grad_compression}
           if args.grad_compression != "none" else {}),
        **({"powersgd": (args.powersgd_rank, args.powersgd_warmup)}
           if args.grad_compression == "powersgd" else {})}
    return Run(dataset, model, optimizer, build_schedule(args, lr, sampler.steps_per_epoch),
               sampler, trainer, batch, fingerprint)
