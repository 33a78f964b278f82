"""Rank 0's side effects (distbp.cli.progress): epoch lines, metrics JSON lines, the
final line; nothing on other ranks."""

import json
import shlex
import shutil
import subprocess
import sys

import pytest
from mpi_helpers import ROOT, clean_env, mpirun_path

from distbp.cli.progress import Progress, memory_report
from distbp.dist.comm import SerialComm

RECORD = {"event": "epoch", "epoch": 1, "train_loss": 0.5, "test_loss": 0.4,
          "test_accuracy": 0.9, "samples_per_s": 12345.6, "epoch_time": 1.5, "wall_time": 1.5}


def test_epoch_lines_metrics_and_summary(tmp_path, capsys):
    metrics = tmp_path / "m.jsonl"
    log = Progress(True, False, str(metrics), False, steps_per_epoch=10, epochs=3)
    log.start("2 rank(s)")
    log.epoch(RECORD)
    summary = log.finish({"event": "summary", "test_correct": 9, "test_count": 10})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "distbp: 2 rank(s)"
    assert lines[1].startswith("epoch   1/3  train loss 0.5000  test loss 0.4000  test acc "
                               "0.9000  12,346 samples/s") and lines[1].endswith("ETA 3s")
    assert lines[2].startswith("final test accuracy: 0.9000 (9/10)")
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    assert records == [RECORD, summary] and summary["event"] == "summary"


def test_quiet_prints_only_the_result_and_other_ranks_nothing(tmp_path, capsys):
    quiet = Progress(True, True, None, False, 10, 3)
    quiet.start("x")
    quiet.epoch(RECORD)
    quiet.finish({"test_correct": 9, "test_count": 10})
    assert capsys.readouterr().out.startswith("final test accuracy")
    other = Progress(False, False, str(tmp_path / "m.jsonl"), False, 10, 3)
    other.start("x")
    other.epoch(RECORD)
    other.finish({"test_correct": 9, "test_count": 10})
    assert capsys.readouterr().out == "" and not (tmp_path / "m.jsonl").exists()


def test_memory_report_per_rank():
    report = memory_report(SerialComm())
    assert set(report) == {"peak_rss_mb", "private_mb"} and report["peak_rss_mb"][0] > 10


def job_output(tmp_path, terminal):
    """The job's output under mpirun -n 2: in a pseudo-terminal (script), or a pipe."""
    command = [mpirun_path(), "-n", "2", sys.executable, "-m", "distbp.train", "--epochs", "2",
               "--hidden", "64"]
    if not terminal:
        result = subprocess.run(command, cwd=ROOT, env=clean_env(), capture_output=True,
                                timeout=120)
        return (result.stdout + result.stderr).decode()  # bytes: keep any \r
    if shutil.which("script") is None:
        pytest.skip("no `script` (util-linux) to give the job a terminal")
    typescript = tmp_path / "typescript"
    subprocess.run(["script", "-qfec", shlex.join(command), str(typescript)], cwd=ROOT,
                   env=clean_env(), stdin=subprocess.DEVNULL, capture_output=True,
                   timeout=120, check=True)
    return typescript.read_bytes().decode(errors="replace")


def test_under_mpirun_a_terminal_gets_a_live_line_and_a_pipe_plain_lines(tmp_path):
    live, plain = job_output(tmp_path, True), job_output(tmp_path, False)
    for text in (live, plain):
        assert "epoch   1/2  train loss" in text and "final test accuracy" in text
    assert "epoch 1/2:" in live and "batch/s" in live and "\r" in live  # tqdm's line
    assert "batch/s" not in plain and "\r" not in plain
