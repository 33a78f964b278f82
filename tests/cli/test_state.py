"""Run state (distbp.cli.state): the position advances and rolls over, and save/restore
brings back parameters, optimizer state and position, refusing another run's file."""

import numpy as np
import pytest

from distbp.cli import state
from distbp.cli.config import parse_args
from distbp.cli.run import setup
from distbp.dist.choose import make_reduction, reduction_name
from distbp.dist.comm import SerialComm


def test_position_counts_steps_and_skips():
    position = state.Position()
    position.advance(2.0, 10, skipped=False)
    position.advance(float("nan"), 10, skipped=True)
    assert (position.step, position.step_in_epoch, position.skipped) == (2, 2, 1)
    assert (position.loss_sum, position.seen) == (20.0, 10)
    position.next_epoch()
    assert (position.epoch, position.step_in_epoch, position.loss_sum, position.seen) == \
        (1, 0, 0.0, 0)
    assert position.step == 2 and position.skipped == 1


def make_run(*flags):
    args = parse_args(["--hidden", "8", "--optimizer", "adam", *flags])
    comm = SerialComm()
    name = reduction_name(args.reduce, args.exact, comm)
    return setup(args, comm, make_reduction(name, comm, args.exact_shard_size))


def test_save_then_restore_round_trip(tmp_path):
    run = make_run()
    rng = np.random.default_rng(0)
    run.trainer.step(rng.standard_normal((20, 32)), rng.integers(0, 10, 20), 20)
    position = state.Position(step=7, epoch=1, step_in_epoch=3, loss_sum=1.5, seen=4)
    path = state.save(str(tmp_path), position, run.trainer, run.fingerprint, keep=3)
    fresh = make_run()
    restored = state.restore(SerialComm(), path, fresh.trainer, fresh.fingerprint)
    assert restored == position
    np.testing.assert_array_equal(fresh.model.flat_params, run.model.flat_params)
    for name, buffer in run.optimizer.state().items():
        np.testing.assert_array_equal(fresh.optimizer.state()[name], buffer)
    assert fresh.optimizer.steps == run.optimizer.steps == 1


def test_another_runs_checkpoint_is_refused_naming_the_field(tmp_path):
    run = make_run()
    path = state.save(str(tmp_path), state.Position(), run.trainer, run.fingerprint, keep=3)
    other = make_run("--seed", "5")
    with pytest.raises(ValueError, match=r"is from a different run: 'seed' is 0 on the "
                                         r"checkpoint but 5 on this run$"):
        state.restore(SerialComm(), path, other.trainer, other.fingerprint)
