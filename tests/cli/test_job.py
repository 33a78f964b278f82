"""The `distbp.train` job in one process: flags, config files, metrics, bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_job as run


def test_mlp_beats_a_linear_model_on_the_embedded_dataset(capsys, tmp_path):
    accuracy = {}
    for name, hidden in (("mlp", "128,128"), ("linear", "none")):
        metrics = tmp_path / f"{name}.jsonl"
        code, out, _ = run(capsys, "--hidden", hidden, "--metrics", str(metrics))
        assert code == 0 and out.startswith("final test accuracy: ")
        accuracy[name] = json.loads(metrics.read_text().splitlines()[-1])["test_accuracy"]
    assert accuracy["mlp"] > 0.85
    assert accuracy["mlp"] > accuracy["linear"] + 0.3


def test_metrics_file_has_one_record_per_epoch_and_a_summary(capsys, tmp_path):
    metrics = tmp_path / "m.jsonl"
    code, _, _ = run(capsys, "--epochs", "3", "--metrics", str(metrics))
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert code == 0 and [r["event"] for r in records] == ["epoch"] * 3 + ["summary"]
    assert [r["epoch"] for r in records[:3]] == [1, 2, 3]
    for key in ("train_loss", "test_loss", "test_accuracy", "samples_per_s", "wall_time",
                "ranks", "lr"):
        assert all(key in r for r in records), key
    assert records[0]["train_loss"] > records[2]["train_loss"]
    assert records[-1]["test_count"] == 5000 and records[-1]["config"]["epochs"] == 3


def test_micro_batches_change_nothing_but_rounding(capsys, tmp_path):
    results = []
    for flags in ([], ["--micro-batch-size", "7"]):
        metrics = tmp_path / f"m{len(flags)}.jsonl"
        run(capsys, "--epochs", "1", "--dtype", "float64", "--metrics", str(metrics), *flags)
        results.append(json.loads(metrics.read_text().splitlines()[-1]))
    assert results[0]["test_loss"] == pytest.approx(results[1]["test_loss"], rel=1e-9)


def test_linear_lr_scaling_and_per_rank_batch(capsys, tmp_path):
    metrics = tmp_path / "m.jsonl"
    run(capsys, "--epochs", "1", "--schedule", "constant", "--lr", "0.1", "--lr-scaling",
        "linear", "--base-batch-size", "256", "--batch-size-per-rank", "64",
        "--metrics", str(metrics))
    record = json.loads(metrics.read_text().splitlines()[0])
    assert record["lr"] == pytest.approx(0.1 * 64 / 256)  # one rank: global batch 64
    assert record["step"] == -(-20000 // 64)


def test_profile_prints_each_phase(capsys):
    code, out, _ = run(capsys, "--epochs", "1", "--profile")
    assert code == 0
    header, row = out.splitlines()[0], out.splitlines()[1]
    for phase in ("data", "forward", "backward", "comm", "update", "total"):
        assert phase in header
    cells = [float(c) for c in row.split()[2:]]
    assert len(cells) == 6 and cells[1] > 0 and cells[2] > 0
    assert cells[-1] == pytest.approx(sum(cells[:-1]), abs=0.01)


def image_npz(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 120)
    images = (rng.integers(0, 60, (120, 8, 8)) + labels[:, None, None] * 60).astype(np.uint8)
    np.savez(tmp_path / "img.npz", x_train=images[:90], y_train=labels[:90],
             x_test=images[90:], y_test=labels[90:])
    return str(tmp_path / "img.npz")


def test_cnn_spec_trains_on_images(capsys, tmp_path):
    metrics = tmp_path / "m.jsonl"
    code, out, err = run(capsys, "--dataset", image_npz(tmp_path), "--model",
                         "conv4,bn,relu,pool2,dropout0.1,dense8,relu", "--epochs", "3",
                         "--batch-size", "16", "--optimizer", "adam", "--lr", "0.01",
                         "--metrics", str(metrics))
    assert code == 0, err
    summary = json.loads(metrics.read_text().splitlines()[-1])
    assert summary["test_accuracy"] > 0.6  # three easy classes of 8x8 images


@pytest.mark.parametrize("flags,message", [
    (["--micro-batch-size", "4"], "--micro-batch-size does not combine with BatchNorm"),
    (["--exact"], "--exact does not support BatchNorm"),
    (["--model", "conv4,wobble"], "--model: unknown layer 'wobble'"),
])
def test_batchnorm_refuses_split_statistics(capsys, tmp_path, flags, message):
    code, out, err = run(capsys, "--dataset", image_npz(tmp_path), "--model",
                         "conv4,bn,relu", *flags)
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_a_closed_output_pipe_ends_the_job_quietly():
    job = subprocess.Popen([sys.executable, "-m", "distbp.train", "--epochs", "5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert job.stdout.readline().startswith(b"distbp: 1 rank(s)")
    job.stdout.close()  # like `| head -1`
    _, err = job.communicate(timeout=60)
    assert job.returncode == 141 and err == b""
