"""The training job (distbp.cli.job) under mpirun: the same trajectory at any rank count,
an exception on one rank ends the job naming it, ranks that disagree stop together, and
a bad flag is one line."""

import json

import pytest
from mpi_helpers import run_mpi


def train_metrics(tmp_path, ranks, *flags):
    path = tmp_path / f"metrics-{ranks}.jsonl"
    result, _ = run_mpi(ranks, ["-m", "distbp.train", "--quiet", "--metrics", str(path),
                                *flags])
    assert result.returncode == 0, result.stderr[-3000:]
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_training_job_follows_the_same_trajectory_at_any_rank_count(tmp_path):
    flags = ["--dtype", "float64", "--epochs", "2", "--batch-size", "100",
             "--optimizer", "adam", "--lr", "0.003", "--warmup-epochs", "0.5"]
    runs = {ranks: train_metrics(tmp_path, ranks, *flags) for ranks in (1, 2, 3, 4)}
    reference = runs[1]
    assert [r["event"] for r in reference] == ["epoch", "epoch", "summary"]
    for ranks, records in runs.items():
        assert records[-1]["ranks"] == ranks
        for mine, theirs in zip(records, reference, strict=True):
            for key in ("train_loss", "test_loss", "test_accuracy"):
                assert mine[key] == pytest.approx(theirs[key], rel=1e-9), (ranks, key)
        assert records[-1]["test_correct"] == reference[-1]["test_correct"]


def test_an_exception_on_one_rank_ends_the_job_naming_the_rank():
    result, seconds = run_mpi(4, ["-m", "distbp.train", "--quiet"], timeout=60,
                              fault="2:5")
    assert result.returncode != 0
    assert seconds < 10, f"took {seconds:.1f}s"
    assert "distbp: error on rank 2 of 4: RuntimeError: fault injected by " \
           "DISTBP_FAULT_INJECT=2:5 at step 5" in result.stderr


def test_ranks_launched_with_different_flags_all_stop_with_one_clear_error():
    result, seconds = run_mpi([(2, ["-m", "distbp.train", "--batch-size", "64"]),
                               (2, ["-m", "distbp.train", "--batch-size", "32"])], timeout=60)
    assert result.returncode == 2, result.stderr
    assert seconds < 10
    lines = result.stderr.strip().splitlines()
    assert lines == ["distbp.train: error: configuration differs across ranks: 'batch_size' "
                     "is 64 on rank 0 but 32 on rank(s) 2, 3"]


def test_a_bad_flag_under_mpirun_gives_one_line_and_exit_2():
    result, seconds = run_mpi(4, ["-m", "distbp.train", "--epochs", "-1"], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "distbp.train: error: --epochs must be a positive integer, got -1"]
    assert result.stdout == ""
