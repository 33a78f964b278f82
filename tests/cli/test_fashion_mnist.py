"""Smoke test on the real Fashion-MNIST, when Debian's dataset-fashion-mnist is installed."""

import json
from pathlib import Path

import pytest
from mpi_helpers import run_mpi

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.skipif(not (DEBIAN / "train-images-idx3-ubyte.gz").exists(),
                    reason="Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
def test_one_epoch_on_fashion_mnist_beats_80_percent(tmp_path):
    metrics = tmp_path / "m.jsonl"
    result, _ = run_mpi(2, ["-m", "distbp.train", "--dataset", "fashion-mnist", "--epochs", "1",
                            "--hidden", "128", "--optimizer", "adam", "--lr", "0.002",
                            "--quiet", "--metrics", str(metrics)], timeout=300,
                        DISTBP_CACHE=str(tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    summary = json.loads(metrics.read_text().splitlines()[-1])
    assert summary["test_count"] == 10000 and summary["test_accuracy"] > 0.80
