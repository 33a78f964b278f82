"""Every shell script under cluster/ parses (bash -n) and is executable where it should
be: a syntax error in a job script otherwise shows up only inside a running job."""

import os
import subprocess
from pathlib import Path

import pytest

CLUSTER = Path(__file__).resolve().parents[2] / "cluster"
SCRIPTS = sorted([*CLUSTER.glob("*.sh"), *CLUSTER.glob("*.sbatch")])


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_script_parses(script):
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_cluster_script_is_executable_and_says_how_to_use_it():
    script = CLUSTER / "local-cluster.sh"
    assert os.access(script, os.X_OK)
    result = subprocess.run([str(script)], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("local-cluster.sh: usage: local-cluster.sh up N")
    bad = subprocess.run([str(script), "up", "zero"], capture_output=True, text=True)
    assert bad.returncode == 2 and "N must be a node count" in bad.stderr
