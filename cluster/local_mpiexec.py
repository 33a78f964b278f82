"""`cluster/local-cluster.sh mpiexec [mpiexec args] CMD...`: MPICH's mpiexec across the
nodes of the cluster in a box, without Slurm.

mpiexec runs inside node1 with Hydra's manual launcher (`-launcher manual -hosts
node1,...`): instead of ssh it prints one `HYDRA_LAUNCH: <proxy command>` per host, and
this wrapper starts each proxy inside its node's namespaces (`nsenter -t PID -n -u -m`).
Every other line of mpiexec's output (the ranks') passes through; the exit code is
mpiexec's; SIGINT and SIGTERM go to mpiexec, which ends the proxies and ranks.
Usage: python3 local_mpiexec.py STATE_DIR [mpiexec args] CMD...
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

TRANSPORT = {"MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "FI_TCP_IFACE": "eth0"}


def enter(state: Path, node: str) -> list[str]:
    """The command prefix that runs a command inside `node`'s namespaces."""
    pid = (state / f"{node}.pid").read_text().strip()
    return ["nsenter", "-t", pid, "-n", "-u", "-m", f"--wd={os.getcwd()}", "--"]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: local-cluster.sh mpiexec [mpiexec args] CMD...", file=sys.stderr)
        return 2
    state, args = Path(argv[0]), argv[1:]
    nodes = (state / "nodes").read_text().split()
    given = [i for i, a in enumerate(args) if a in ("-hosts", "-host", "--hosts")]
    # Hydra numbers the proxies in the order of the hosts: every node unless -hosts names
    # some (a host file is not read here: give the nodes with -hosts)
    order = args[given[0] + 1].split(",") if given else nodes
    hosts = [] if given else ["-hosts", ",".join(nodes)]
    env = {**TRANSPORT, **os.environ}  # the caller's settings win
    mpiexec = subprocess.Popen([*enter(state, nodes[0]), "mpiexec", "-launcher", "manual",
                                *hosts, *args], stdout=subprocess.PIPE, env=env)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda number, frame: mpiexec.send_signal(number))
    proxies: list[subprocess.Popen] = []
    assert mpiexec.stdout is not None
    launching = True
    for line in iter(mpiexec.stdout.readline, b""):
        text = line.decode(errors="replace")
        if launching and text.startswith("HYDRA_LAUNCH: "):
            command = shlex.split(text[len("HYDRA_LAUNCH: "):])
            proxy = int(re.search(r"--proxy-id (\d+)", text)[1])
            host = order[proxy % len(order)].split(":")[0]
            proxies.append(subprocess.Popen([*enter(state, host), *command], env=env))
        elif launching and text.startswith("HYDRA_LAUNCH_END"):
            launching = False
        else:
            sys.stdout.buffer.write(line)
            sys.stdout.buffer.flush()
    code = mpiexec.wait()
    for proxy in proxies:
        try:
            proxy.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proxy.kill()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
