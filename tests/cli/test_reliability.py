"""Fail fast, never hang, lose nothing: kills, stalls, preemption, exact resume, NaNs.

Every test launches the real job through mpirun with a bounded time.
"""

import json
import random

import numpy as np
import pytest
from mpi_helpers import run_mpi

from distbp.cli import checkpoint

SMALL = ["-m", "distbp.train", "--quiet", "--epochs", "2", "--batch-size", "256",
         "--hidden", "32,32", "--optimizer", "adam", "--lr", "0.003", "--warmup-epochs", "0.3"]
STEPS = 2 * 79  # 20000 examples in global batches of 256, two epochs


def final_params(directory):
    path = checkpoint.latest(directory)
    assert path is not None and path.name == f"ckpt-{STEPS:09d}.npz"
    return checkpoint.load(path)["params"]


def summary(path):
    return json.loads(path.read_text().splitlines()[-1])


@pytest.mark.parametrize("trial", range(3))
def test_a_rank_killed_with_sigkill_ends_the_job_quickly(trial):
    rank, step = random.Random(trial).randrange(4), random.Random(trial).randrange(STEPS)
    result, seconds = run_mpi(4, SMALL, timeout=60, fault=f"{rank}:{step}:kill")
    assert result.returncode != 0
    assert seconds < 15, f"rank {rank} killed at step {step}: the job took {seconds:.1f}s"


@pytest.mark.parametrize("reduce,operation", [("allreduce", "Allreduce"),
                                              ("shared", "node Barrier")])
def test_a_stalled_collective_is_reported_and_aborts(reduce, operation):
    result, seconds = run_mpi(4, [*SMALL, "--stall-timeout", "2", "--reduce", reduce],
                              timeout=60, fault="1:7:hang")
    assert result.returncode != 0 and seconds < 15
    assert f"stalled 2s in {operation} at step 7 (--stall-timeout 2s)" in result.stderr


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The reference: the same run at 2 ranks, float32, never interrupted."""
    directory = tmp_path_factory.mktemp("reference")
    result, _ = run_mpi(2, [*SMALL, "--checkpoint-dir", str(directory / "ckpt"),
                            "--checkpoint-every", "1epoch", "--metrics",
                            str(directory / "m.jsonl")])
    assert result.returncode == 0, result.stderr
    return final_params(directory / "ckpt"), summary(directory / "m.jsonl")


@pytest.mark.parametrize("sigterm_rank,step", [(0, 13), (1, 100)])
def test_sigterm_checkpoints_and_resume_is_bitwise_exact(tmp_path, uninterrupted,
                                                         sigterm_rank, step):
    flags = [*SMALL, "--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-every", "1epoch",
             "--metrics", str(tmp_path / "m.jsonl")]
    result, _ = run_mpi(2, flags, timeout=120, fault=f"{sigterm_rank}:{step}:sigterm")
    assert result.returncode == 75, result.stderr
    # the signal arrives during step `step`; every rank stops after the next Allreduce
    assert checkpoint.latest(tmp_path / "ckpt").name == f"ckpt-{step + 1:09d}.npz"
    result, _ = run_mpi(2, [*flags, "--resume"], timeout=120)
    assert result.returncode == 0, result.stderr
    reference, reference_summary = uninterrupted
    assert np.array_equal(final_params(tmp_path / "ckpt"), reference)  # bitwise
    assert summary(tmp_path / "m.jsonl")["test_loss"] == reference_summary["test_loss"]


@pytest.mark.parametrize("resume_ranks", [1, 3])  # Allreduce path at 1, shared memory at 3
def test_resume_at_another_rank_count_matches_to_float64_rounding(tmp_path, resume_ranks):
    flags = [*SMALL, "--dtype", "float64", "--checkpoint-every", "50"]
    result, _ = run_mpi(2, [*flags, "--checkpoint-dir", str(tmp_path / "a")], timeout=120)
    assert result.returncode == 0, result.stderr
    result, _ = run_mpi(2, [*flags, "--checkpoint-dir", str(tmp_path / "b")], timeout=120,
                        fault="1:60:sigterm")
    assert result.returncode == 75, result.stderr
    result, _ = run_mpi(resume_ranks, [*flags, "--checkpoint-dir", str(tmp_path / "b"),
                                       "--resume"], timeout=120)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(final_params(tmp_path / "b"), final_params(tmp_path / "a"),
                               rtol=1e-9, atol=1e-12)


def test_killed_while_writing_a_checkpoint_the_previous_one_resumes(tmp_path, uninterrupted):
    flags = [*SMALL, "--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-every", "20",
             "--keep-checkpoints", "2"]
    result, seconds = run_mpi(2, flags, timeout=60, fault="0:40:kill-in-checkpoint")
    assert result.returncode != 0 and seconds < 15
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names[-1] == f"ckpt-{20:09d}.npz" and any(".tmp" in n for n in names)
    result, _ = run_mpi(2, [*flags, "--resume"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert np.array_equal(final_params(tmp_path / "ckpt"), uninterrupted[0])
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == [f"ckpt-{140:09d}.npz", f"ckpt-{STEPS:09d}.npz"]  # kept 2, no leftovers


def test_nonfinite_stop_policy_stops_every_rank_with_one_line(tmp_path):
    flags = [*SMALL, "--checkpoint-dir", str(tmp_path / "ckpt"), "--checkpoint-every", "4"]
    result, seconds = run_mpi(4, flags, timeout=60, fault="3:9:nan")
    assert result.returncode == 2 and seconds < 15
    assert result.stderr.strip().splitlines() == [
        "distbp.train: error: non-finite loss or gradient at step 9 (epoch 1); stopped before "
        "updating, checkpoints are intact (--on-nonfinite skip skips such steps)"]
    names = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert names == [f"ckpt-{4:09d}.npz", f"ckpt-{8:09d}.npz"]
    assert np.isfinite(checkpoint.load(tmp_path / "ckpt" / names[-1])["params"]).all()


def test_nonfinite_skip_policy_skips_that_update_everywhere(tmp_path, uninterrupted):
    result, _ = run_mpi(4, [*SMALL, "--on-nonfinite", "skip", "--metrics",
                            str(tmp_path / "m.jsonl")], timeout=120,
                        fault="2:9:nan")
    assert result.returncode == 0, result.stderr
    final = summary(tmp_path / "m.jsonl")
    assert final["skipped_steps"] == 1 and np.isfinite(final["test_loss"])
    # one skipped step of 158 changes the result only a little
    assert abs(final["test_accuracy"] - uninterrupted[1]["test_accuracy"]) < 0.03
