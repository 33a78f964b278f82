"""Reliability, round 2, under mpirun -n 2 with bounded times: a checkpoint directory
belongs to one run, a finished run resumes to its final metrics, start-up is watched,
SIGINT and SIGTERM stop every rank with one line, and no abort leaves /dev/shm behind
(run_mpi checks /dev/shm after every job)."""

import json
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from mpi_helpers import ROOT, clean_env, mpirun_path, run_mpi, shared_segments

from distbp.cli import checkpoint

JOB = ["-m", "distbp.train", "--quiet", "--epochs", "2", "--batch-size", "512",
       "--hidden", "16"]
LONG = ["-m", "distbp.train", "--epochs", "400", "--batch-size", "256", "--hidden", "64"]


def test_another_runs_checkpoint_directory_is_refused_before_training(tmp_path):
    directory = tmp_path / "ckpt"
    result, _ = run_mpi(2, [*JOB, "--checkpoint-dir", str(directory)], timeout=60)
    assert result.returncode == 0, result.stderr
    before = sorted(directory.iterdir())
    for flags, message in [
        (["--seed", "3"], "holds another run's checkpoints ('seed' is 0 on ckpt-000000040.npz "
                          "but 3 on this run); give this run its own directory"),
        ([], "already holds this run's checkpoints (up to ckpt-000000080.npz): continue with "
             "--resume, or start over in an empty directory"),
    ]:
        result, seconds = run_mpi(2, [*JOB, "--checkpoint-dir", str(directory), *flags],
                                  timeout=60)
        assert result.returncode == 2 and seconds < 20
        assert result.stderr.strip().splitlines() == [
            f"distbp.train: error: on rank 0: --checkpoint-dir {directory} {message}"]
        assert sorted(directory.iterdir()) == before and result.stdout == ""


@pytest.mark.parametrize("setup", ["file", "under a file", "read-only"])
def test_an_unwritable_checkpoint_directory_is_one_line_at_start_up(tmp_path, setup):
    target = tmp_path / "ckpt"
    if setup == "file":
        target.write_text("x")
    elif setup == "under a file":
        (tmp_path / "f").write_text("x")
        target = tmp_path / "f" / "ckpt"
    else:
        target.mkdir()
        target.chmod(0o500)
        if subprocess.run(["touch", str(target / "t")], capture_output=True).returncode == 0:
            pytest.skip("root ignores directory permissions here")
    result, seconds = run_mpi(2, [*JOB, "--checkpoint-dir", str(target)], timeout=60)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and seconds < 20 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"distbp.train: error: on rank 0: --checkpoint-dir {target}")


def test_resuming_a_finished_run_prints_its_final_metrics(tmp_path):
    flags = [*JOB, "--checkpoint-dir", str(tmp_path / "ckpt"), "--metrics",
             str(tmp_path / "m.jsonl")]
    result, _ = run_mpi(2, flags, timeout=60)
    assert result.returncode == 0, result.stderr
    finished = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
    again, seconds = run_mpi(2, [*flags, "--resume"], timeout=60)
    assert again.returncode == 0 and again.stderr == "" and seconds < 20, again.stderr
    def without_time(text: str) -> str:  # the final line ends with the wall time
        return re.sub(r", [\d.]+s$", "", text.strip())

    assert without_time(again.stdout) == without_time(result.stdout)  # the same final line
    summary = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
    assert summary["test_correct"] == finished["test_correct"]
    loud, _ = run_mpi(2, [*flags[:2], *flags[3:], "--resume"], timeout=60)  # without --quiet
    assert "the run is already complete (step 80, epoch 2 of 2)" in loud.stdout


def test_a_rank_stuck_in_start_up_is_caught_by_the_watchdog():
    result, seconds = run_mpi(2, [*JOB, "--stall-timeout", "2"], timeout=60,
                              fault="1:0:hang-in-setup")
    assert result.returncode != 0 and seconds < 20, result.stderr
    assert "stalled" in result.stderr and "at start-up" in result.stderr


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
def test_sigterm_without_a_checkpoint_directory_says_nothing_was_saved(quiet):
    result, _ = run_mpi(2, [*JOB, *quiet], timeout=60, fault="1:5:sigterm")
    assert result.returncode == 75
    assert result.stderr.strip().splitlines() == [
        "distbp: preempted (SIGTERM): stopped after step 6; nothing saved (no --checkpoint-dir)"]


def test_sigterm_during_start_up_stops_before_training(tmp_path):
    result, _ = run_mpi(2, [*JOB, "--checkpoint-dir", str(tmp_path / "c")], timeout=60,
                        fault="0:0:sigterm-in-setup")
    assert result.returncode == 75, result.stderr
    assert result.stderr.strip().splitlines() == [
        "distbp: preempted (SIGTERM): stopped before training began; nothing to save"]
    assert not (tmp_path / "c").exists()


def ctrl_c(tmp_path, delay):
    """mpirun -n 2 of a long job, SIGINT to mpirun after `delay` s: (code, seconds after the
    signal, our stderr lines, stdout)."""
    command = [mpirun_path(), "-n", "2", sys.executable, *LONG, "--checkpoint-dir",
               str(tmp_path / "ckpt")]
    before = shared_segments()
    job = subprocess.Popen(command, cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    job.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        out, err = job.communicate(timeout=30)
    finally:
        job.kill()
    leaked = shared_segments() - before
    assert not leaked, leaked
    ours = [line for line in err.splitlines() if not line.startswith("[mpiexec@")]
    return job.returncode, time.monotonic() - sent, ours, out


def test_ctrl_c_ends_every_rank_quickly_with_one_line_every_time(tmp_path):
    rng = random.Random(0)
    for trial in range(20):
        code, seconds, lines, _ = ctrl_c(tmp_path / str(trial), rng.uniform(0.8, 3.0))
        assert code == 130 and seconds < 5 and len(lines) == 1, (trial, code, seconds, lines)
        assert lines[0].startswith("distbp: interrupted (SIGINT): stopped "), lines
        if "after step" in lines[0]:
            assert checkpoint.latest(tmp_path / str(trial) / "ckpt") is not None


def test_a_closed_pipe_under_mpirun_ends_every_rank_and_leaves_nothing_in_dev_shm():
    before, marker = shared_segments(), ["--seed", "98765"]
    job = subprocess.Popen([mpirun_path(), "-n", "2", sys.executable, *LONG, *marker],
                           cwd=ROOT, env=clean_env(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    assert job.stdout.readline().startswith(b"distbp: 2 rank(s)")
    job.stdout.close()  # like `| head -1`
    try:
        job.communicate(timeout=60)
    finally:
        job.kill()
    # the ranks exit 141; mpirun itself may die of the SIGPIPE first (the shell says 141)
    assert job.returncode in (141, -signal.SIGPIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and subprocess.run(
            ["pgrep", "-f", "seed 98765"], capture_output=True).returncode == 0:
        time.sleep(0.2)
    assert subprocess.run(["pgrep", "-f", "seed 98765"], capture_output=True).returncode == 1
    assert not shared_segments() - before


def test_a_checkpoint_that_cannot_be_written_later_is_one_line_and_the_previous_survives(
        tmp_path):
    directory = tmp_path / "ckpt"
    result, seconds = run_mpi(2, [*JOB, "--checkpoint-dir", str(directory), "--checkpoint-every",
                                  "20"], timeout=60, fault="0:40:full-disk-in-checkpoint")
    assert result.returncode == 2 and seconds < 20, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [f"distbp.train: error: on rank 0: cannot write a checkpoint in "
                     f"{directory}: No space left on device; the previous checkpoint is intact"]
    assert [p.name for p in checkpoint.list_checkpoints(directory)] == ["ckpt-000000020.npz"]
    assert not list(directory.glob(".*tmp*"))
    checkpoint.load(directory / "ckpt-000000020.npz")  # whole and verified


def test_an_npz_is_memory_mapped_from_the_cache_not_loaded_by_every_rank(tmp_path):
    rng = np.random.default_rng(0)
    x = np.zeros((50_000, 500))  # 200 MB of float64, a few hundred kB compressed
    x[:, 0] = rng.standard_normal(50_000)
    np.savez_compressed(tmp_path / "big.npz", x_train=x, y_train=(x[:, 0] > 0).astype(int),
                        x_test=x[:1000], y_test=(x[:1000, 0] > 0).astype(int))
    assert (tmp_path / "big.npz").stat().st_size < 5e6
    metrics = tmp_path / "m.jsonl"
    result, _ = run_mpi(2, ["-m", "distbp.train", "--quiet", "--dataset", str(tmp_path / "big.npz"),
                            "--epochs", "1", "--batch-size", "5000", "--hidden", "8", "--metrics",
                            str(metrics)], timeout=120, DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(metrics.read_text().splitlines()[-1])
    assert max(summary["private_mb"]) < 150, summary["private_mb"]  # not 200 MB each
    assert len(list((tmp_path / "cache").glob("big.npz.*.x_train.npy"))) == 1
