"""Helpers for the tests of the cluster in a box (cluster/local-cluster.sh): bringing it up
and down, running jobs across its nodes, reading its links' counters."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "cluster" / "local-cluster.sh"
STATE = Path(os.environ.get("DISTBP_CLUSTER_DIR", "/run/distbp-cluster"))
FLAGS = ["--epochs", "2", "--dtype", "float64", "--optimizer", "adam", "--lr", "0.002",
         "--hidden", "64"]


def why_not() -> str | None:
    """Why the cluster cannot come up here, or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces)"
    for tool in ("ip", "tc", "unshare", "nsenter", "slurmctld", "slurmd", "munged"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"'{tool}' is missing (apt-get install iproute2 slurm-wlm munge)"
    if (STATE / "nodes").exists():
        return f"a cluster in a box is already up ({STATE}); take it down to run these tests"
    probe = subprocess.run(["ip", "netns", "add", "dbp-probe"], capture_output=True, text=True)
    subprocess.run(["ip", "netns", "del", "dbp-probe"], capture_output=True)
    if probe.returncode != 0:
        return f"network namespaces are unavailable: {probe.stderr.strip()}"
    return None


reason = why_not()
MARKS = [pytest.mark.skipif(reason is not None, reason=f"no cluster in a box: {reason}"),
         pytest.mark.timeout(300)]  # a test module's pytestmark


def box(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=kwargs.pop("timeout", 240), **kwargs)


def cluster_up():
    """Two nodes; yields the environment for sbatch/srun (SLURM_CONF, MPI over TCP). A
    test module's fixture: `yield from cluster_up()`; down and verified gone after."""
    up = box("up", "2")
    assert up.returncode == 0, up.stdout + up.stderr
    env = dict(os.environ, DISTBP_PYTHON=sys.executable)
    for line in (STATE / "env").read_text().splitlines():
        if line.startswith("export "):
            env.update(pair.split("=", 1) for pair in line[len("export "):].split())
    try:
        yield env
    finally:
        down = box("down")
        assert down.returncode == 0, down.stderr
        assert not STATE.exists()
        assert "dbp-" not in subprocess.run(["ip", "-o", "link"], capture_output=True,
                                            text=True).stdout
        assert "dbp-node" not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                text=True).stdout


def sent(node: int) -> int:
    """Bytes node K has sent through its link (counted on the bridge's side)."""
    return int(Path(f"/sys/class/net/dbp-v{node}/statistics/rx_bytes").read_text())


def mpiexec(env: dict, tmp_path: Path, *args: str, timeout: float = 240):
    return subprocess.run(["bash", str(SCRIPT), "mpiexec", *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=timeout)


def train(env: dict, tmp_path: Path, placement: list[str], *flags: str):
    return mpiexec(env, tmp_path, *placement, sys.executable, "-m", "distbp.train", *flags)


def serial(tmp_path: Path, *flags: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "distbp.train", *flags], cwd=tmp_path,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    return result


def params(path: Path) -> np.ndarray:
    return np.load(path)["params"]


def accuracy(stdout: str) -> float:
    return float(re.search(r"final test accuracy: ([\d.]+)", stdout)[1])
