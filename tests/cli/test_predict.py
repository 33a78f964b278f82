"""`python -m distbp.predict` (distbp.cli.predict) under mpirun: the counts are the job's,
the predictions are written, bad input is one line; --init-from fine-tunes."""

import json

import numpy as np
import pytest
from mpi_helpers import run_mpi

JOB = ["-m", "distbp.train", "--quiet", "--hidden", "32", "--optimizer", "adam", "--lr", "0.003"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("trained")
    result, _ = run_mpi(2, [*JOB, "--epochs", "2", "--save-model", str(out / "m.npz"),
                            "--metrics", str(out / "m.jsonl")], timeout=120)
    assert result.returncode == 0, result.stderr
    return out, json.loads((out / "m.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize("ranks", [1, 3])
def test_predict_reports_the_jobs_own_counts(trained, tmp_path, ranks):
    out, summary = trained
    result, _ = run_mpi(ranks, ["-m", "distbp.predict", str(out / "m.npz"), "--dataset",
                                "synthetic", "--output", str(tmp_path / "p.npy"), "--plot",
                                str(tmp_path / "c.png")], timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (f"accuracy {summary['test_accuracy']:.4f} "
                        f"({summary['test_correct']}/5000)")
    assert lines[1] == "class  precision  recall  examples" and len(lines) == 2 + 10 + 1 + 10
    predictions = np.load(tmp_path / "p.npy")
    assert predictions.shape == (5000, 10)
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")


def test_predict_with_a_missing_model_is_one_line(tmp_path):
    result, _ = run_mpi(2, ["-m", "distbp.predict", str(tmp_path / "nope.npz"), "--dataset",
                            "synthetic"], timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distbp.predict: error: ")
    assert f"model file {tmp_path / 'nope.npz'} does not exist" in lines[0]


def test_init_from_starts_a_new_run_from_trained_parameters(trained, tmp_path):
    out, summary = trained
    metrics = tmp_path / "f.jsonl"
    result, _ = run_mpi(2, [*JOB, "--epochs", "1", "--lr", "0.0005", "--init-from",
                            str(out / "m.npz"), "--metrics", str(metrics)], timeout=60)
    assert result.returncode == 0, result.stderr
    first = json.loads(metrics.read_text().splitlines()[0])
    fresh = json.loads((out / "m.jsonl").read_text().splitlines()[0])
    assert first["train_loss"] < fresh["train_loss"]  # it started trained
    assert first["test_accuracy"] > summary["test_accuracy"] - 0.02


@pytest.mark.parametrize("flags,message", [
    (["--hidden", "16"], "--init-from: M holds Sequential([Dense(32, 32)"),
    (["--resume", "M"], "give one of them"),
])
def test_init_from_refuses_another_model_or_resume_in_one_line(trained, flags, message):
    out, _ = trained
    path = str(out / "m.npz")
    result, _ = run_mpi(2, [*JOB, "--init-from", path,
                            *[path if f == "M" else f for f in flags]], timeout=60)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message.replace("M", path) in lines[0], result.stderr


def test_predict_a_regression_model_sums_errors_over_ranks(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 4))
    np.savez(tmp_path / "r.npz", x_train=x[:150], y_train=x[:150, :2] * 2, x_test=x[150:],
             y_test=x[150:, :2] * 2)
    flags = ["--dataset", str(tmp_path / "r.npz"), "--loss", "mse", "--epochs", "3"]
    result, _ = run_mpi(2, [*JOB, *flags, "--save-model", str(tmp_path / "m.npz"), "--metrics",
                            str(tmp_path / "m.jsonl")], timeout=60,
                        DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    mse = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])["test_mse"]
    result, _ = run_mpi(3, ["-m", "distbp.predict", str(tmp_path / "m.npz"), "--dataset",
                            str(tmp_path / "r.npz")], timeout=60,
                        DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"test MSE {mse:.6f}, RMSE {mse ** 0.5:.6f} (50 examples)")
