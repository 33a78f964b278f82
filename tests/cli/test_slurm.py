"""A real single-node Slurm cluster (Debian's slurm-wlm and munge, started here as root
without systemd) runs the cluster/ scripts: a plain job, and a preemptible job that is
sent SIGTERM, checkpoints, requeues itself and finishes."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from slurm_helpers import job_state, missing, slurm_cluster, wait_for

ROOT = Path(__file__).resolve().parents[2]
reason = missing()
pytestmark = pytest.mark.skipif(reason is not None, reason=f"no Slurm test cluster: {reason}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with slurm_cluster(tmp_path_factory.mktemp("slurm")) as env:
        env["DISTBP_PYTHON"] = sys.executable
        yield env


def test_single_node_job(cluster, tmp_path):
    out = tmp_path / "job.out"
    result = subprocess.run(["sbatch", "--wait", "--parsable", "--output", str(out),
                             str(ROOT / "cluster/single-node.sbatch"), "--epochs", "2",
                             "--hidden", "32"],
                            env=cluster, cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    text = out.read_text()
    assert result.returncode == 0, result.stderr + text
    assert re.search(r"4 rank\(s\) on 1 node\(s\), Slurm job \d+ step 0 on \S+, MPI: MPICH", text)
    assert "final test accuracy: " in text


def test_srun_without_pmi_is_caught(cluster):
    result = subprocess.run(["srun", "--mpi=none", "-n", "3", sys.executable, "-m",
                             "distbp.train"], env=cluster, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if line.startswith("distbp.train: error: ")] == [
        "distbp.train: error: srun started 3 tasks (SLURM_STEP_NUM_TASKS=3) but MPI sees a "
        "single rank: 3 independent copies would each train as rank 0; launch with `srun "
        "--mpi=pmi2 python -m distbp.train ...` (or this environment's own `mpirun -n N`), "
        "and use an mpi4py built against the MPI library that launches it"], result.stderr


@pytest.mark.timeout(300)
def test_preemptible_job_checkpoints_requeues_and_finishes(cluster, tmp_path):
    out, checkpoints = tmp_path / "job.out", tmp_path / "ckpt"
    env = {**cluster, "DISTBP_CHECKPOINT_DIR": str(checkpoints)}
    job = subprocess.run(["sbatch", "--parsable", "--output", str(out),
                          str(ROOT / "cluster/preemptible.sbatch"), "--epochs", "40",
                          "--hidden", "256,256", "--checkpoint-every", "200"],
                         env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    wait_for(lambda: any(checkpoints.glob("ckpt-*.npz")), 60, "the first checkpoint")
    # what Slurm does for --signal=B:TERM@120: SIGTERM to the batch shell
    shell = subprocess.run(["pgrep", "-f", f"job{int(job):05d}/slurm_script( |$)"],
                           capture_output=True, text=True, timeout=10).stdout.split()
    assert len(shell) == 1, shell
    subprocess.run(["kill", "-TERM", shell[0]], check=True, timeout=10)
    # Slurm makes a requeued job wait two minutes (its begin time); the test does not. It
    # waits a few seconds though: slurmd refuses a credential issued in the same second as
    # the revocation of the previous run's ("Job credential revoked").
    wait_for(lambda: job_state(env, job)[:2] == ("PENDING", 1), 60, "the job to be requeued")
    time.sleep(3)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"], env=env,
                   check=True, timeout=10)
    deadline = time.monotonic() + 90
    while job_state(env, job)[0] != "COMPLETED" and time.monotonic() < deadline:
        assert job_state(env, job)[0] not in ("FAILED", "CANCELLED", "TIMEOUT"), out.read_text()
        time.sleep(0.5)
    text = out.read_text()
    assert job_state(env, job)[:2] == ("COMPLETED", 1), text
    assert "preempted (SIGTERM): stopped after step" in text
    assert "checkpoint written: requeueing job" in text
    assert re.search(r"resumed at step \d+", text) and "run 2 of job" in text
    assert "final test accuracy: " in text
    assert (checkpoints / "ckpt-000006280.npz").exists()  # 40 epochs x 157 steps, finished
