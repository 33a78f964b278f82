"""The run's objects (distbp.cli.run): built once from the flags, with one fingerprint
whose fields are exactly those checkpoints have always carried."""

import numpy as np
import pytest

from distbp.cli.config import parse_args
from distbp.cli.run import Run, setup
from distbp.dist.choose import make_reduction, reduction_name
from distbp.dist.comm import SerialComm
from distbp.dist.fixedpoint import FixedPointSum

FIELDS = ["batch_size", "dataset", "drop_last", "exact", "micro_batch_size", "model",
          "optimizer", "schedule", "seed"]


def build(*flags):
    args = parse_args([*flags])
    comm = SerialComm()
    name = reduction_name(args.reduce, args.exact, comm)
    return setup(args, comm, make_reduction(name, comm, args.exact_shard_size))


def test_setup_builds_a_typed_run():
    run = build("--hidden", "8", "--optimizer", "adamw", "--batch-size", "100",
                "--warmup-epochs", "1", "--epochs", "2")
    assert isinstance(run, Run) and run.batch == 100
    assert run.trainer.model is run.model and run.trainer.optimizer is run.optimizer
    assert [repr(layer) for layer in run.model.layers] == ["Dense(32, 8)", "ReLU()",
                                                          "Dense(8, 10)"]
    assert run.sampler.steps_per_epoch == 200
    assert run.schedule(0) == pytest.approx(0.05 / 200) and run.schedule(199) == \
        pytest.approx(run.schedule.inner(199))  # warm-up over the first epoch
    assert sorted(run.fingerprint) == FIELDS
    assert run.fingerprint["exact"] == (False, None)


def test_exact_mode_is_a_reduction_not_a_branch():
    run = build("--exact", "--exact-shard-size", "64", "--dtype", "float64")
    assert isinstance(run.trainer.reduction, FixedPointSum)
    assert run.fingerprint["exact"] == (True, 64) and run.model.dtype == np.float64
