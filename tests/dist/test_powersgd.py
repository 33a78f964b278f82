"""The PowerSGD reduction (distbp.dist.powersgd): on one node it compresses nothing (the
Allreduce's bits), its settings are checked, and its checkpoint state round-trips, moving
to another node count with the total error kept. Across nodes: tests/cluster."""

import numpy as np
import pytest
from test_shared import trajectory

from distbp.dist.choose import make_reduction
from distbp.dist.comm import SerialComm
from distbp.dist.powersgd import DEFAULT_RANK, DEFAULT_WARMUP, PowerSGDSum
from distbp.dist.reduction import AllreduceSum
from distbp.errors import ConfigError


def test_one_node_compresses_nothing():
    hashed, reduction = trajectory(PowerSGDSum(rank=1, warmup=0))
    assert hashed == trajectory(AllreduceSum())[0]
    assert reduction.steps == 0 and reduction.wire_bytes() == 0
    assert not reduction.error.any()


def test_the_settings_are_checked_and_named():
    assert PowerSGDSum().describe() == (f"HierarchicalSum (PowerSGD rank {DEFAULT_RANK} "
                                        f"between nodes after {DEFAULT_WARMUP} exact steps)")
    for bad in ({"rank": 0}, {"warmup": -1}):
        with pytest.raises(ConfigError, match="--powersgd-"):
            PowerSGDSum(**bad)
    made = make_reduction("hierarchical", SerialComm(), compression="powersgd",
                          powersgd_rank=2, powersgd_warmup=7)
    assert isinstance(made, PowerSGDSum) and (made.rank, made.warmup) == (2, 7)


def test_the_checkpoint_state_round_trips():
    _, reduction = trajectory(PowerSGDSum(rank=2, warmup=0))
    reduction.error[...] = np.arange(len(reduction.error))
    reduction.q[...] = 0.5
    reduction.steps = 12
    saved = {name: value.copy() for name, value in reduction.state().items()}
    assert saved["powersgd_error"].shape == (1, len(reduction.error))  # one row per node
    reduction.error[...], reduction.q[...], reduction.steps = 0, 0, 0
    reduction.load_state(saved)
    assert np.array_equal(reduction.error, saved["powersgd_error"][0])
    assert np.all(reduction.q == 0.5) and reduction.steps == 12


def test_another_node_count_keeps_the_total_error_on_node_zero():
    _, reduction = trajectory(PowerSGDSum(rank=2, warmup=0))
    saved = reduction.state()
    size = len(reduction.error)
    saved["powersgd_error"] = np.stack([np.ones(size), 2 * np.ones(size), np.ones(size)])
    reduction.load_state(saved)  # 3 nodes' errors, 1 node now
    assert np.all(reduction.error == 4.0)


def test_a_state_that_does_not_fit_is_one_line():
    _, reduction = trajectory(PowerSGDSum(rank=2, warmup=0))
    saved = reduction.state()
    with pytest.raises(ConfigError, match="does not fit this model and --powersgd-rank"):
        reduction.load_state({**saved, "powersgd_q": saved["powersgd_q"][:-1]})
    with pytest.raises(ConfigError, match="has no PowerSGD state"):
        reduction.load_state({})
