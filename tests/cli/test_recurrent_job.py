"""The job with recurrent models, clipping and regression under mpirun: exact mode with an
LSTM is bitwise the same at 1, 2 and 3 ranks; a regression run with clipping follows the
same trajectory at any rank count. (Bad flags: tests/cli/test_config.py.)"""

import hashlib
import json

import numpy as np
import pytest
from mpi_helpers import run_mpi

from distbp.cli import checkpoint

LSTM_JOB = ["-m", "distbp.train", "--quiet", "--dataset", "IMAGES", "--model", "lstm12,dense8,relu",
            "--epochs", "2", "--batch-size", "50", "--optimizer", "adam", "--lr", "0.01",
            "--clip-grad-norm", "0.5"]


def images(tmp_path):
    """90/30 tiny 6x6 'images' of 3 classes (rows as time steps)."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    x = (rng.integers(0, 80, (120, 6, 6)) + labels[:, None, None] * 60).astype(np.uint8)
    np.savez(tmp_path / "img.npz", x_train=x[:90], y_train=labels[:90], x_test=x[90:],
             y_test=labels[90:])
    return str(tmp_path / "img.npz")


def run(tmp_path, name, ranks, flags):
    metrics = tmp_path / f"{name}.jsonl"
    result, _ = run_mpi(ranks, [*flags, "--metrics", str(metrics), "--checkpoint-dir",
                                str(tmp_path / name)], timeout=120,
                        DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    params = checkpoint.load(checkpoint.latest(tmp_path / name))["params"]
    return params, [json.loads(line) for line in metrics.read_text().splitlines()]


def test_exact_mode_with_an_lstm_is_bitwise_the_same_at_1_2_and_3_ranks(tmp_path):
    flags = [a.replace("IMAGES", images(tmp_path)) for a in LSTM_JOB]
    flags += ["--exact", "--exact-shard-size", "16"]  # 4 micro-shards per batch of 50
    runs = {ranks: run(tmp_path, f"exact{ranks}", ranks, flags) for ranks in (1, 2, 3)}
    digests = {r: hashlib.sha256(p.tobytes()).hexdigest() for r, (p, _) in runs.items()}
    assert len(set(digests.values())) == 1, digests
    norms = {r: [m["grad_norm_max"] for m in records if m["event"] == "epoch"]
             for r, (_, records) in runs.items()}
    assert norms[1] == norms[2] == norms[3] and norms[1][0] > 0.5  # clipping was active


def regression_npz(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, 16))
    y = np.stack([np.sin(x[:, :4].sum(1)), x[:, 4] * x[:, 5]], axis=1)  # (N, 2) targets
    np.savez(tmp_path / "reg.npz", x_train=x[:240], y_train=y[:240], x_test=x[240:],
             y_test=y[240:])
    return str(tmp_path / "reg.npz")


def test_regression_with_clipping_follows_one_trajectory_at_any_rank_count(tmp_path):
    flags = ["-m", "distbp.train", "--quiet", "--dataset", regression_npz(tmp_path), "--loss",
             "mse", "--model", "rnn8seq,lstm8,dense16,tanh", "--epochs", "3", "--batch-size",
             "37", "--dtype", "float64", "--optimizer", "adam", "--lr", "0.01",
             "--clip-grad-norm", "1"]
    runs = {ranks: run(tmp_path, f"reg{ranks}", ranks, flags) for ranks in (1, 2, 4)}
    for ranks, (params, records) in runs.items():
        np.testing.assert_allclose(params, runs[1][0], rtol=1e-9, atol=1e-12)
        for mine, theirs in zip(records, runs[1][1], strict=True):
            for key in ("train_loss", "test_mse", "test_rmse", "grad_norm_mean"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-9), (ranks, key)
    epochs = [r for r in runs[1][1] if r["event"] == "epoch"]
    assert epochs[-1]["test_mse"] < epochs[0]["test_mse"]  # it learns
    assert "test_accuracy" not in runs[1][1][-1] and runs[1][1][-1]["test_count"] == 60
