"""Exact mode: the same bits at any rank count, for the job and through checkpoints."""

import hashlib
import json

import pytest
from mpi_helpers import run_mpi

from distbp.cli import checkpoint

# global batch 100 in micro-shards of 20: K = 5 shards, uneven over 2, 3 and 4 ranks
EXACT = ["-m", "distbp.train", "--quiet", "--exact", "--exact-shard-size", "20",
         "--batch-size", "100", "--epochs", "2", "--hidden", "64,32", "--optimizer", "adamw",
         "--lr", "0.003", "--warmup-epochs", "0.5", "--checkpoint-every", "1epoch"]
METRICS = ("train_loss", "test_loss", "test_accuracy", "step", "lr")


def run(tmp_path, name, ranks, *extra, **env):
    directory = tmp_path / name
    result, _ = run_mpi(ranks, [*EXACT, "--checkpoint-dir", str(directory), "--metrics",
                                str(tmp_path / f"{name}.jsonl"), *extra], timeout=180, **env)
    return result, directory


def final(tmp_path, name):
    arrays = checkpoint.load(checkpoint.latest(tmp_path / name))
    records = [json.loads(line) for line in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
    return (hashlib.sha256(arrays["params"].tobytes()).hexdigest(),
            [{key: r.get(key) for key in METRICS} for r in records if r["event"] == "epoch"])


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("exact")
    result, _ = run(tmp_path, "n1", 1)
    assert result.returncode == 0, result.stderr
    return final(tmp_path, "n1")


@pytest.mark.parametrize("ranks", [2, 3, 4])
def test_bitwise_identical_at_any_rank_count(tmp_path, single, ranks):
    result, _ = run(tmp_path, f"n{ranks}", ranks)
    assert result.returncode == 0, result.stderr
    digest, epochs = final(tmp_path, f"n{ranks}")
    assert digest == single[0]
    assert epochs == single[1]  # every per-epoch metric, to the last bit
    assert len(epochs) == 2


def test_checkpoint_at_2_resumed_at_4_equals_uninterrupted_single_rank(tmp_path, single):
    result, _ = run(tmp_path, "split", 2, fault="1:77:sigterm")
    assert result.returncode == 75, result.stderr
    assert checkpoint.latest(tmp_path / "split").name == "ckpt-000000078.npz"  # mid-epoch
    result, _ = run(tmp_path, "split", 4, "--resume")
    assert result.returncode == 0, result.stderr
    assert final(tmp_path, "split")[0] == single[0]


def test_exact_does_not_combine_with_micro_batches(tmp_path):
    result, _ = run(tmp_path, "bad", 2, "--micro-batch-size", "8")
    assert result.returncode == 2
    assert "--micro-batch-size does not combine with --exact" in result.stderr
