"""--grad-compression powersgd on the cluster in a box: it trains across 2 nodes at 2 and 3
ranks (nodes of different sizes too) about as well as exact sums while sending ~6% of
the bytes (the metrics agree with the links' counters), its warm-up is the exact sum, its
checkpoints keep every node's error feedback and resume bitwise, and a NaN still stops
the job before anything is compressed."""

from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest
from box_helpers import FLAGS, MARKS, ROOT, accuracy, cluster_up, mpiexec, params, sent, train

pytestmark = MARKS
SMALL = ["--epochs", "2", "--hidden", "256,256", "--optimizer", "adam", "--lr", "0.002"]
# the 32-256-256-10 MLP at rank 4: P (32+256+256) x 4, Q (256+256+10) x 4, biases 522
POWERSGD_VALUES = 544 * 4 + 522 * 4 + 522


@pytest.fixture(scope="module")
def cluster():
    yield from cluster_up()


@pytest.mark.parametrize("placement", [["-n", "2", "-ppn", "1"], ["-n", "3", "-ppn", "2"]],
                         ids=["2x1", "2+1"])
def test_powersgd_trains_like_exact_sums_on_a_fraction_of_the_bytes(cluster, tmp_path,
                                                                     placement):
    moved, accuracies, reported = {}, {}, {}
    for codec in ("none", "powersgd"):
        before = sent(1)
        result = train(cluster, tmp_path, placement, *SMALL, "--grad-compression", codec,
                       *(["--powersgd-warmup", "5"] if codec == "powersgd" else []),
                       "--metrics", f"{codec}.jsonl")
        assert result.returncode == 0, result.stderr
        moved[codec], accuracies[codec] = sent(1) - before, accuracy(result.stdout)
        records = [json.loads(line) for line in (tmp_path / f"{codec}.jsonl").read_text()
                   .splitlines()][:-1]  # the epochs' records (the summary repeats the last)
        reported[codec] = (records[0]["wire_bytes_per_step"] * records[0]["step"]
                           + records[1]["wire_bytes_per_step"] * (records[1]["step"]
                                                                  - records[0]["step"]))
        assert records[-1]["train_loss"] < 0.6 * records[0]["train_loss"]
    assert "PowerSGD rank 4 between nodes after 5 exact steps" in result.stdout
    steps = records[-1]["step"]
    assert reported["powersgd"] == pytest.approx((5 * 76810 + (steps - 5) * POWERSGD_VALUES) * 4)
    assert moved["powersgd"] < 0.15 * moved["none"], moved  # the counter: ~6% + headers
    assert 0.5 < reported["powersgd"] / moved["powersgd"] < 1.0, (reported, moved)
    assert abs(accuracies["powersgd"] - accuracies["none"]) < 0.03, accuracies


def test_its_warm_up_is_the_exact_sum(cluster, tmp_path):
    where = ["-n", "2", "-ppn", "1"]
    exact = train(cluster, tmp_path, where, *FLAGS, "--epochs", "1", "--reduce", "hierarchical",
                  "--save-model", "exact.npz")
    warm = train(cluster, tmp_path, where, *FLAGS, "--epochs", "1", "--grad-compression",
                 "powersgd", "--powersgd-warmup", "100000", "--save-model", "warm.npz")
    assert exact.returncode == 0 and warm.returncode == 0, exact.stderr + warm.stderr
    assert np.array_equal(params(tmp_path / "exact.npz"), params(tmp_path / "warm.npz"))


def test_checkpoints_keep_every_nodes_error_and_resume_bitwise(cluster, tmp_path):
    flags = [*FLAGS, "--epochs", "3", "--keep-checkpoints", "5", "--grad-compression",
             "powersgd", "--powersgd-rank", "2", "--powersgd-warmup", "3"]
    where = ["-n", "4", "-ppn", "2"]
    whole = train(cluster, tmp_path, where, *flags, "--checkpoint-dir", "a",
                  "--save-model", "whole.npz")
    assert whole.returncode == 0, whole.stderr
    epoch1 = sorted((tmp_path / "a").glob("ckpt-*.npz"))[0]
    saved = np.load(epoch1)
    errors = saved["trainer.powersgd_error"]
    assert errors.shape == (2, len(saved["params"])) and int(saved["trainer.powersgd_steps"]) > 3
    assert np.all(np.any(errors != 0, axis=1)) and not np.array_equal(errors[0], errors[1])
    (tmp_path / "b").mkdir()
    shutil.copy(epoch1, tmp_path / "b" / epoch1.name)
    rest = train(cluster, tmp_path, where, *flags, "--checkpoint-dir", "b", "--resume",
                 "--save-model", "resumed.npz")
    assert rest.returncode == 0, rest.stderr
    assert np.array_equal(params(tmp_path / "resumed.npz"), params(tmp_path / "whole.npz"))
    other = train(cluster, tmp_path, where, *flags[:-1], "5", "--checkpoint-dir", "b",
                  "--resume")
    assert other.returncode == 2 and "holds another run's checkpoints ('powersgd' is (2, 3)" \
        in other.stderr


def test_a_nan_stops_the_job_before_anything_is_compressed(cluster, tmp_path):
    env = {**cluster, "DISTBP_FAULT_INJECT": "1:5:nan"}
    result = mpiexec(env, tmp_path, "-n", "2", "-ppn", "1", sys.executable,
                     str(ROOT / "tests" / "faults.py"), "--epochs", "1",
                     "--grad-compression", "powersgd", "--powersgd-warmup", "2")
    assert result.returncode == 2, result.stderr
    assert "non-finite loss or gradient at step 5" in result.stderr
