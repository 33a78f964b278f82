"""The cluster in a box (cluster/local-cluster.sh): two nodes as network, UTS and mount
namespaces on one machine, MPI between them over TCP through veths, Slurm with one
slurmd per node. Multi-node runs match one process (float64 to 1e-9, --exact bitwise),
checkpoints move between node counts, Slurm jobs span and survive nodes, a cut link
ends the job."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from box_helpers import (
    FLAGS,
    MARKS,
    ROOT,
    SCRIPT,
    STATE,
    accuracy,
    box,
    cluster_up,
    mpiexec,
    params,
    sent,
    serial,
    train,
)
from slurm_helpers import job_state, wait_for

pytestmark = MARKS


@pytest.fixture(scope="module")
def cluster():
    yield from cluster_up()

def test_each_node_has_its_own_name_link_and_shared_memory(cluster):
    assert box("exec", "1", "hostname").stdout.strip() == "node1"
    assert box("exec", "2", "hostname").stdout.strip() == "node2"
    assert "10.77.0.2/24" in box("exec", "2", "ip", "-o", "addr", "show", "eth0").stdout
    box("exec", "1", "touch", "/dev/shm/distbp-probe")
    assert box("exec", "2", "ls", "/dev/shm").stdout.split() == []
    assert not Path("/dev/shm/distbp-probe").exists()
    assert box("up", "2").returncode == 2  # already up: refused, nothing touched
    assert box("exec", "1", "true").returncode == 0


@pytest.mark.parametrize("placement", [["-n", "2", "-ppn", "1"], ["-n", "4", "-ppn", "2"]],
                         ids=["2x1", "2x2"])
@pytest.mark.parametrize("reduce", ["auto", "allreduce", "hierarchical"])
def test_float64_trajectory_across_nodes_matches_one_process(cluster, tmp_path, placement,
                                                             reduce):
    serial(tmp_path, *FLAGS, "--save-model", "one.npz")
    before = sent(1)
    result = train(cluster, tmp_path, placement, *FLAGS, "--reduce", reduce,
                   "--save-model", "many.npz")
    assert result.returncode == 0, result.stderr
    ranks = placement[1]
    assert f"distbp: {ranks} rank(s) on 2 node(s)" in result.stdout
    assert sent(1) - before > params(tmp_path / "one.npz").nbytes  # gradients crossed the wire
    np.testing.assert_allclose(params(tmp_path / "many.npz"), params(tmp_path / "one.npz"),
                               rtol=0, atol=1e-9)


def test_exact_mode_across_nodes_is_bitwise_one_process(cluster, tmp_path):
    serial(tmp_path, *FLAGS, "--exact", "--save-model", "one.npz")
    result = train(cluster, tmp_path, ["-n", "4", "-ppn", "2"], *FLAGS, "--exact",
                   "--save-model", "many.npz")
    assert result.returncode == 0, result.stderr
    assert np.array_equal(params(tmp_path / "many.npz"), params(tmp_path / "one.npz"))


def test_hierarchical_needs_equal_ranks_per_node(cluster, tmp_path):
    result = train(cluster, tmp_path, ["-n", "3", "-ppn", "2"], *FLAGS, "--reduce",
                   "hierarchical")
    assert result.returncode == 2
    assert "--reduce hierarchical needs the same number of ranks on every node, got [1, 2]" \
        in result.stderr


@pytest.mark.parametrize("first, then", [("2 nodes", "1 node"), ("1 node", "2 nodes")])
def test_a_checkpoint_moves_between_node_counts(cluster, tmp_path, first, then):
    where = {"2 nodes": ["-n", "4", "-ppn", "2"], "1 node": ["-n", "2", "-hosts", "node1"]}
    flags = [*FLAGS, "--epochs", "3", "--keep-checkpoints", "5"]
    whole = train(cluster, tmp_path, where[first], *flags, "--checkpoint-dir", "a",
                  "--save-model", "whole.npz")
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "b").mkdir()
    epoch1 = sorted((tmp_path / "a").glob("ckpt-*.npz"))[0]
    shutil.copy(epoch1, tmp_path / "b" / epoch1.name)
    rest = train(cluster, tmp_path, where[then], *flags, "--checkpoint-dir", "b", "--resume",
                 "--save-model", "resumed.npz")
    assert rest.returncode == 0, rest.stderr
    assert "resumed at step" in rest.stdout + rest.stderr
    np.testing.assert_allclose(params(tmp_path / "resumed.npz"),
                               params(tmp_path / "whole.npz"), rtol=0, atol=1e-9)


def test_a_cut_link_ends_every_rank_with_one_line(cluster, tmp_path):
    job = subprocess.Popen(["bash", str(SCRIPT), "mpiexec", "-n", "2", "-ppn", "1",
                            sys.executable, "-m", "distbp.train", "--epochs", "200",
                            "--hidden", "256,256", "--stall-timeout", "5", "--checkpoint-dir",
                            "ckpt", "--checkpoint-every", "20"],
                           env=cluster, cwd=tmp_path, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any((tmp_path / "ckpt").glob("ckpt-*.npz")), 120, "a checkpoint")
        assert box("exec", "2", "ip", "link", "set", "eth0", "down").returncode == 0
        cut = time.monotonic()
        out, err = job.communicate(timeout=5 + 15 + 30)
        ended = time.monotonic() - cut
    finally:
        box("exec", "2", "ip", "link", "set", "eth0", "up")
        if job.poll() is None:
            job.kill()
    assert job.returncode != 0
    assert ended <= 5 + 15, f"took {ended:.1f}s after the cut"
    lines = [line for line in err.splitlines() if line.startswith("distbp: error")]
    assert lines and re.search(r"stalled \d+s in \S.* at (epoch \d+ )?step \d+", lines[0]), err
    import distbp
    for checkpoint in (tmp_path / "ckpt").glob("ckpt-*.npz"):
        distbp.load_model(checkpoint)  # every file on disk is whole (checksummed)
    assert not list((tmp_path / "ckpt").glob("*.tmp*"))


LOST_FLAGS = [*FLAGS, "--epochs", "30", "--hidden", "256,256", "--checkpoint-every", "100"]


def profile(env: dict, tmp_path: Path) -> list[float]:
    """Each rank's communication wait (ms per step) from --profile, at 2 nodes x 1 rank."""
    result = train(env, tmp_path, ["-n", "2", "-ppn", "1"], "--epochs", "1", "--hidden",
                   "256", "--quiet", "--profile")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith("rank ")]
    assert len(rows) == 2 and "communication wait:" in result.stdout, result.stdout
    return [float(row[5]) for row in rows]  # rank N, data, forward, backward, comm


def test_a_slow_link_shows_as_communication_wait(cluster, tmp_path):
    fast = profile(cluster, tmp_path)
    assert box("limit", "2", "20mbit").returncode == 0
    try:
        slow = profile(cluster, tmp_path)
    finally:
        assert box("limit", "2", "none").returncode == 0
    # 11 k float32 gradients (44 kB) each way per step: about 18 ms each way at 20 Mbit/s
    assert min(slow) > 10 and min(slow) > 5 * max(fast), (fast, slow)


def test_sbatch_runs_across_two_nodes(cluster, tmp_path):
    out = tmp_path / "job.out"
    result = subprocess.run(["sbatch", "-N", "2", "--ntasks-per-node", "2", "--wait",
                             "--output", str(out), str(ROOT / "cluster/multi-node.sbatch"),
                             *FLAGS], env=cluster, cwd=tmp_path, capture_output=True,
                            text=True, timeout=240)
    text = out.read_text()
    assert result.returncode == 0, result.stderr + text
    assert re.search(r"4 rank\(s\) on 2 node\(s\), Slurm job \d+ step 0 on node\[1-2\]", text)
    assert "final test accuracy: " in text


def test_a_node_lost_under_slurm_requeues_onto_the_nodes_left(cluster, tmp_path):
    out, checkpoints = tmp_path / "job.out", tmp_path / "ckpt"
    env = {**cluster, "DISTBP_CHECKPOINT_DIR": str(checkpoints)}
    job = subprocess.run(["sbatch", "--parsable", "-N", "1-2", "--ntasks-per-node", "2",
                          "--output", str(out), str(ROOT / "cluster/preemptible.sbatch"),
                          *LOST_FLAGS, "--save-model", "final.npz", "--metrics", "m.jsonl"],
                         env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=60).stdout.strip()
    wait_for(lambda: job_state(env, job)[2] == "node[1-2]", 60, "the job on two nodes")
    wait_for(lambda: any(checkpoints.glob("ckpt-*.npz"))
             or job_state(env, job)[0] not in ("PENDING", "RUNNING"), 120, "a checkpoint")
    assert job_state(env, job)[0] == "RUNNING", out.read_text()
    # node2 is lost: everything in it dies, Slurm is told (as its node health check would)
    pids = subprocess.run(["ip", "netns", "pids", "dbp-node2"], capture_output=True, text=True)
    holder = (STATE / "node2.pid").read_text().strip()
    for pid in pids.stdout.split():
        if pid != holder:
            subprocess.run(["kill", "-KILL", pid], capture_output=True)
    subprocess.run(["scontrol", "update", "NodeName=node2", "State=DOWN", "Reason=lost"],
                   env=env, check=True, timeout=10)
    try:
        wait_for(lambda: job_state(env, job)[1] >= 1, 90, "the job to be requeued")
        time.sleep(3)  # slurmd refuses a credential issued in the revocation's second
        # Slurm keeps a requeued job's node count (2): shrink it to the node left, as an
        # operator would, and let it start now (not after Slurm's requeue delay)
        for update in (["NumNodes=1", "NumTasks=2", "NumCPUs=2"], ["StartTime=now"]):
            subprocess.run(["scontrol", "update", f"JobId={job}", *update], env=env,
                           check=True, timeout=10)
        deadline = time.monotonic() + 200
        while job_state(env, job)[0] != "COMPLETED" and time.monotonic() < deadline:
            assert job_state(env, job)[0] not in ("FAILED", "CANCELLED", "TIMEOUT"), \
                out.read_text()
            time.sleep(0.5)
        state, restarts, nodes = job_state(env, job)
        text = out.read_text()
        assert (state, nodes) == ("COMPLETED", "node1"), text
        assert re.search(r"2 rank\(s\) on 1 node\(s\)", text) and "resumed at step" in text
        last = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
        assert last["epoch"] == 30
    finally:
        restore_node2(env)
    serial(tmp_path, *LOST_FLAGS, "--save-model", "one.npz")  # the same run, never lost
    np.testing.assert_allclose(params(tmp_path / "final.npz"), params(tmp_path / "one.npz"),
                               rtol=0, atol=1e-9)


def restore_node2(env: dict) -> None:
    """Start node2's slurmd again and return the node to service."""
    pid = (STATE / "node2.pid").read_text().strip()
    subprocess.Popen(["setsid", "nsenter", "-t", pid, "-n", "-u", "-m", "--", "slurmd", "-D",
                      "-N", "node2", "-f", env["SLURM_CONF"]], env=env,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run(["scontrol", "update", "NodeName=node2", "State=RESUME"], env=env,
                   capture_output=True, timeout=10)


def test_compression_halves_the_bytes_between_nodes(cluster, tmp_path):
    flags = ["--epochs", "1", "--hidden", "256,256", "--optimizer", "adam", "--lr", "0.002"]
    moved, accuracies = {}, {}
    reported = {}
    for codec in ("none", "bf16", "fp16"):
        before = sent(1)
        result = train(cluster, tmp_path, ["-n", "2", "-ppn", "1"], *flags, "--reduce",
                       "hierarchical", "--grad-compression", codec, "--metrics", f"{codec}.jsonl")
        assert result.returncode == 0, result.stderr
        moved[codec], accuracies[codec] = sent(1) - before, accuracy(result.stdout)
        record = json.loads((tmp_path / f"{codec}.jsonl").read_text().splitlines()[0])
        reported[codec] = record["wire_bytes_per_step"] * record["step"]
        if codec != "none":
            assert f"HierarchicalSum ({codec} between nodes)" in result.stdout
    for codec in ("bf16", "fp16"):
        assert 0.4 < moved[codec] / moved["none"] < 0.6, moved
        assert abs(accuracies[codec] - accuracies["none"]) < 0.02, accuracies
        assert reported[codec] == 2 * 76810 * record["step"]  # 2 bytes each way per value
    for codec, total in reported.items():  # the metrics agree with the veth's counter
        assert 0.8 < total / moved[codec] < 1.0, (reported, moved)


def test_compressed_runs_resume_exactly_and_stay_close(cluster, tmp_path):
    flags = [*FLAGS, "--epochs", "3", "--keep-checkpoints", "5", "--grad-compression", "fp16"]
    where = ["-n", "4", "-ppn", "2"]
    whole = train(cluster, tmp_path, where, *flags, "--checkpoint-dir", "a",
                  "--save-model", "whole.npz")
    assert whole.returncode == 0, whole.stderr
    (tmp_path / "b").mkdir()
    epoch1 = sorted((tmp_path / "a").glob("ckpt-*.npz"))[0]
    shutil.copy(epoch1, tmp_path / "b" / epoch1.name)
    rest = train(cluster, tmp_path, where, *flags, "--checkpoint-dir", "b", "--resume",
                 "--save-model", "resumed.npz")
    assert rest.returncode == 0, rest.stderr
    assert np.array_equal(params(tmp_path / "resumed.npz"), params(tmp_path / "whole.npz"))
    one = serial(tmp_path, *FLAGS, "--epochs", "3", "--save-model", "one.npz")
    assert abs(accuracy(whole.stdout) - accuracy(one.stdout)) < 0.02
    assert 0 < np.max(np.abs(params(tmp_path / "whole.npz") - params(tmp_path / "one.npz")))


def test_compression_needs_the_hierarchical_reduction(cluster, tmp_path):
    result = train(cluster, tmp_path, ["-n", "2", "-ppn", "1"], "--reduce", "allreduce",
                   "--grad-compression", "bf16")
    assert result.returncode == 2
    assert "--grad-compression bf16 compresses between nodes in --reduce hierarchical, not " \
           "with --reduce allreduce" in result.stderr


@pytest.mark.parametrize("codec", ["bf16", "fp16"])
def test_compression_still_catches_non_finite_gradients(cluster, tmp_path, codec):
    env = {**cluster, "DISTBP_FAULT_INJECT": "1:5:nan"}
    result = mpiexec(env, tmp_path, "-n", "2", "-ppn", "1", sys.executable,
                     str(ROOT / "tests" / "faults.py"), "--epochs", "1",
                     "--grad-compression", codec)
    assert result.returncode == 2, result.stderr
    assert "non-finite loss or gradient at step 5" in result.stderr
