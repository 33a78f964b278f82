"""Multi-node speed on the cluster in a box: flat Allreduce against the hierarchical
reduction, 1 node against 2, at several link rates, with the bytes on the wire.

    python scripts/multinode_bench.py [--rates 10gbit,1gbit] [--model medium]
        [--repeats 5] [--steps 20] [--json out.json]          (as root)

For each rate it brings up `cluster/local-cluster.sh up 2 --rate RATE` (and takes it
down at the end), then runs scripts/bench.py's worker through the cluster's mpiexec for
each layout, interleaved: repeat 1 of every layout, then repeat 2, ... Each run reports
its median step over --steps steps after a warm-up, the time spent waiting in
reductions (exposed communication) and the bytes node 1 sent through its link per step
(from its namespace's /proc/net/dev). Printed: medians over repeats and their spread.
At each rate it also times a ladder of Allreduce sizes between the 2 nodes (1 rank each):
scripts/scaling_model.py --links fits each link's alpha and beta to it.
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for the workers; one BLAS thread per rank.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = ROOT / "cluster" / "local-cluster.sh"
LAYOUTS = {  # nodes x ranks per node, reduction -> (mpiexec placement, --reduce[, codec])
    "1x2-shared": (["-n", "2", "-hosts", "node1"], "shared"),
    "2x1-allreduce": (["-n", "2", "-ppn", "1"], "allreduce"),
    "2x2-allreduce": (["-n", "4", "-ppn", "2"], "allreduce"),
    "2x2-hierarchical": (["-n", "4", "-ppn", "2"], "hierarchical"),
    "2x1-bf16": (["-n", "2", "-ppn", "1"], "hierarchical", "bf16"),
    "2x1-fp16": (["-n", "2", "-ppn", "1"], "hierarchical", "fp16"),
    "2x1-powersgd": (["-n", "2", "-ppn", "1"], "hierarchical", "powersgd"),
    "2x1-ddp": ([], "ddp", "none"),  # PyTorch DDP (gloo), one process per node
    "2x1-ddp-fp16": ([], "ddp", "fp16"),  # ... with its fp16_compress_hook
}
DEFAULT_LAYOUTS = "1x2-shared,2x1-allreduce,2x2-allreduce,2x2-hierarchical"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def run_layout(layout: str, args: argparse.Namespace) -> dict:
    placement, reduce, *codec = LAYOUTS[layout]
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    if reduce == "ddp":
        return run_ddp(codec[0], args, env)
    command = ["bash", str(CLUSTER), "mpiexec", *placement, sys.executable,
               str(ROOT / "scripts" / "bench.py"), "--worker", "--model", args.model,
               "--steps", str(args.steps), "--repeats", "1", "--threads", "1",
               "--reduce", reduce, "--grad-compression", codec[0] if codec else "none",
               "--powersgd-warmup", "5"]  # the warm-up run's 20 steps cover it
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"{layout}: worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ddp(hook: str, args: argparse.Namespace, env: dict) -> dict:
    """PyTorch DDP, one rank in each node's namespace (scripts/compare_torch.py's node
    worker), with the communication hook `hook`."""
    port = 29500 + int(time.time()) % 1000
    procs = [subprocess.Popen(["bash", str(CLUSTER), "exec", str(rank + 1), sys.executable,
                               str(ROOT / "scripts" / "compare_torch.py"), "--ddp-node",
                               "--rank", str(rank), "--world", "2", "--port", str(port),
                               "--hook", hook, "--model", args.model, "--steps",
                               str(args.steps), "--repeats", "1"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for rank in range(2)]
    outs = [proc.communicate(timeout=900) for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"DDP ({hook}) failed:\n" + "\n".join(o[1][-2000:] for o in outs))
    result = json.loads(outs[0][0].strip().splitlines()[-1])
    return {**result, "exposed_comm_s": [float("nan")], "nodes": 2, "blas": "torch"}


LADDER = [1 << k for k in (10, 14, 17, 20, 22, 23)]  # float32 elements: 4 kB to 32 MB


def ladder_worker() -> None:
    """Median time of an in-place float32 Allreduce of each LADDER size (rank 0 prints)."""
    import numpy as np
    from mpi4py import MPI

    comm, rows = MPI.COMM_WORLD, []
    for count in LADDER:
        buffer, times = np.ones(count, np.float32), []
        for _ in range(7):
            comm.Barrier()
            start = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer)
            times.append(time.perf_counter() - start)
        rows.append([4 * count, median(times)])
    if comm.rank == 0:
        print(json.dumps(rows))


def run_ladder() -> list[list[float]]:
    command = ["bash", str(CLUSTER), "mpiexec", "-n", "2", "-ppn", "1", sys.executable,
               __file__, "--ladder-worker"]
    out = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"Allreduce ladder failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10gbit,1gbit")
    parser.add_argument("--model", default="medium", help="scripts/bench.py's MODELS")
    parser.add_argument("--layouts", default=DEFAULT_LAYOUTS,
                        help=f"comma-separated, of: {', '.join(LAYOUTS)}")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--json")
    parser.add_argument("--ladder-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.ladder_worker:
        return ladder_worker()
    layouts = [name.strip() for name in args.layouts.split(",")]
    print(f"CPU: {cpu_model()} ({os.cpu_count()} cores); model {args.model}; "
          f"{args.repeats} interleaved repeats of {args.steps} steps")
    results: list[dict] = []
    links: dict[str, list[list[float]]] = {}
    for rate in args.rates.split(","):
        subprocess.run(["bash", str(CLUSTER), "down"], check=True, capture_output=True)
        subprocess.run(["bash", str(CLUSTER), "up", "2", "--rate", rate], check=True,
                       stdout=subprocess.DEVNULL)
        try:
            runs: dict[str, list[dict]] = {name: [] for name in layouts}
            for _ in range(args.repeats):
                for name in layouts:
                    runs[name].append(run_layout(name, args))
            links[rate] = run_ladder()
        finally:
            subprocess.run(["bash", str(CLUSTER), "down"], capture_output=True)
        print(f"\nlink {rate}  (BLAS: {runs[layouts[0]][0]['blas']})")
        print(f"{'layout':28} {'samples/s':>10} {'step ms':>8} {'spread':>7} "
              f"{'comm wait ms':>12} {'MB/step sent':>12}")
        for name in layouts:
            steps = [r["step_s"][0] for r in runs[name]]
            step = median(steps)
            first = runs[name][0]
            row = {"rate": rate, "layout": name, "model": args.model, "step_s": steps,
                   "step_median_s": step, "spread": (max(steps) - min(steps)) / step,
                   "samples_per_s": first["per_rank"] * first["ranks"] / step,
                   "exposed_median_s": median([r["exposed_comm_s"][0] for r in runs[name]]),
                   "wire_mb_per_step": median([r["wire_bytes_per_step"]
                                               for r in runs[name]]) / 1e6,
                   "nodes": first["nodes"], "reduce": first["reduce"], "cpu": cpu_model()}
            results.append(row)
            print(f"{name:28} {row['samples_per_s']:>10,.0f} {1e3 * step:>8.1f} "
                  f"{row['spread']:>6.0%} {1e3 * row['exposed_median_s']:>12.1f} "
                  f"{row['wire_mb_per_step']:>12.2f}", flush=True)
        print("Allreduce between the 2 nodes: " + ", ".join(
            f"{size / 1e6:g} MB {1e3 * seconds:.2f} ms" for size, seconds in links[rate]))
    if args.json:
        Path(args.json).write_text(json.dumps({"steps": results, "links": links}, indent=1))


if __name__ == "__main__":
    main()
