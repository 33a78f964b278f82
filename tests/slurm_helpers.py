"""A real single-node Slurm cluster for tests: munged, slurmctld -D, slurmd -D, started
as root without systemd from Debian's slurm-wlm and munge, with a minimal slurm.conf in
a temporary directory. Only the processes started here are stopped afterwards."""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

BINARIES = ("slurmctld", "slurmd", "munged", "sbatch", "srun", "scontrol", "scancel", "sinfo")

CONF = """\
ClusterName=distbp-test
FirstJobId={first_job}
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=pmi2
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SlurmctldPort={port}
SlurmdPort={port2}
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=5
NodeName={host} CPUs=4 State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
"""


def missing() -> str | None:
    """Why a cluster cannot be brought up here, or None."""
    if os.geteuid() != 0:
        return "needs root to run slurmctld/slurmd/munged"
    absent = [b for b in BINARIES if shutil.which(b) is None
              and not Path("/usr/sbin", b).exists()]
    if absent:
        return f"missing {', '.join(absent)} (apt-get install slurm-wlm munge)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {seconds}s waiting for {what}")


def job_state(env: dict[str, str], job: str) -> tuple[str, int, str]:
    """(JobState, Restarts, NodeList) of a job, from scontrol."""
    text = subprocess.run(["scontrol", "show", "job", job], env=env, capture_output=True,
                          text=True, timeout=10).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", text))
    return fields.get("JobState", "?"), int(fields.get("Restarts", "0")), \
        fields.get("NodeList", "")


def munge_running() -> bool:
    return subprocess.run(["sh", "-c", "echo | munge | unmunge"], capture_output=True,
                          timeout=10).returncode == 0


def die_with_parent() -> None:
    """In the child: get SIGTERM when the test process dies, however it dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def stop_jobs(env: dict[str, str]) -> None:
    """Cancel every job of the test cluster and wait until their processes are gone."""
    subprocess.run(["scancel", "--user", "root"], env=env, capture_output=True, timeout=10)
    with contextlib.suppress(TimeoutError):
        wait_for(lambda: not subprocess.run(["squeue", "-h"], env=env, capture_output=True,
                                            text=True, timeout=10).stdout.strip(),
                 30, "the test cluster's jobs to end")


@contextlib.contextmanager
def slurm_cluster(directory: Path) -> Iterator[dict[str, str]]:
    """Yields the environment (SLURM_CONF) for sbatch/srun/scontrol on the test cluster."""
    host = socket.gethostname().split(".")[0]
    for sub in ("state", "spool"):
        (directory / sub).mkdir(parents=True, exist_ok=True)
    conf = directory / "slurm.conf"
    # Job ids unique across test clusters: MPICH names its shared-memory segments after
    # the PMI job id ("<job>.<step>"), and a segment left by a killed job of an earlier
    # cluster with the same id would be picked up by a new job.
    first_job = random.SystemRandom().randrange(10**6, 6 * 10**7)
    conf.write_text(CONF.format(host=host, dir=directory, port=free_port(), port2=free_port(),
                                first_job=first_job))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    started: list[subprocess.Popen] = []
    try:
        if not munge_running():
            Path("/run/munge").mkdir(parents=True, exist_ok=True)
            shutil.chown("/run/munge", "munge", "munge")
            started.append(subprocess.Popen(["runuser", "-u", "munge", "--", "munged",
                                             "--foreground"], stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL,
                                            preexec_fn=die_with_parent))
            wait_for(munge_running, 10, "munged")
        for daemon in ("slurmctld", "slurmd"):
            started.append(subprocess.Popen([daemon, "-D", "-f", str(conf)], env=env,
                                            stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL,
                                            preexec_fn=die_with_parent))
        wait_for(lambda: "idle" in subprocess.run(["sinfo", "-h", "-o", "%t"], env=env,
                                                 capture_output=True, text=True).stdout,
                 30, "the node to be idle")
        yield env
    finally:
        stop_jobs(env)
        for process in reversed(started):
            process.terminate()
        for process in reversed(started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
