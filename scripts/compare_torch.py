"""distbp against PyTorch on CPU, in one invocation, alternating, same models and batches.

    python scripts/compare_torch.py [--models small,medium,wide] [--rounds 3]

Three contenders per model, each trained with plain SGD on random float32 data:
  distbp  mpirun -n 2, one BLAS thread per rank (scripts/bench.py's worker);
  DDP     PyTorch DistributedDataParallel, gloo, 2 processes, 1 thread each, same
          per-rank batch;
  torch   plain PyTorch in one process with 2 threads and the 2-rank global batch.
Rounds alternate the three; the medians of the rounds give samples/s and the ratios.
torch is optional (pip install torch==2.13.0 gives a CPU build): without it this says
so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import MODELS, launch, summarize  # noqa: E402


def build(torch, sizes):
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def time_steps(torch, model, batch, sizes, steps, repeats, barrier=lambda: None) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(batch, sizes[0]), torch.randint(0, sizes[-1], (batch,))
    times = []
    for repeat in range(repeats + 1):
        barrier()
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=False)
            loss_fn(model(x), y).backward()
            optimizer.step()
        if repeat:
            times.append((time.perf_counter() - start) / steps)
    return times


def ddp_rank(rank, world, port, args, queue):
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    sizes, per_rank = MODELS[args.model]
    torch.manual_seed(0)
    model = torch.nn.parallel.DistributedDataParallel(build(torch, sizes))
    times = time_steps(torch, model, per_rank, sizes, args.steps, args.repeats, dist.barrier)
    everyone = [None] * world
    dist.all_gather_object(everyone, times)
    if rank == 0:
        queue.put([max(t[i] for t in everyone) for i in range(args.repeats)])
    dist.barrier()
    dist.destroy_process_group()


def torch_worker(args) -> None:
    import torch
    import torch.multiprocessing as mp

    sizes, per_rank = MODELS[args.model]
    if args.mode == "ddp":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        mp.spawn(ddp_rank, args=(2, port, args, queue), nprocs=2, join=True)
        times = queue.get()
    else:
        torch.set_num_threads(2)
        torch.manual_seed(0)
        times = time_steps(torch, build(torch, sizes), 2 * per_rank, sizes, args.steps,
                           args.repeats)
    print(json.dumps({"step_s": sorted(times), "samples": 2 * per_rank,
                      "threads": "1 per rank" if args.mode == "ddp" else torch.get_num_threads(),
                      "torch": torch.__version__}))


def run_torch(mode: str, model: str, args) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    command = [sys.executable, __file__, "--torch-worker", "--mode", mode, "--model", model,
               "--steps", str(args.steps), "--repeats", str(args.repeats)]
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"torch {mode} worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="ddp", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="medium", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="small,medium,wide")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: pip install torch==2.13.0 (CPU build) to compare; "
              "skipping")
        return
    args.threads, args.reduce, args.exact, args.exact_shard_size, args.global_batch = \
        0, "auto", False, 128, 0
    results = {}
    for model in args.models.split(","):
        samples = {"distbp": [], "ddp": [], "torch": []}
        for _ in range(args.rounds):  # alternate the contenders
            distbp = summarize(launch(model, 2, args))
            samples["distbp"].append(distbp["samples_per_s"])
            for mode in ("ddp", "torch"):
                out = run_torch(mode, model, args)
                samples[mode].append(out["samples"] / out["step_s"][len(out["step_s"]) // 2])
        medians = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
        results[model] = {"samples_per_s": medians, "rounds": samples,
                          "vs_ddp": medians["distbp"] / medians["ddp"],
                          "vs_torch": medians["distbp"] / medians["torch"]}
        print(f"{model:7} distbp {medians['distbp']:>10,.0f}  DDP {medians['ddp']:>10,.0f}  "
              f"torch(2 threads) {medians['torch']:>10,.0f}  samples/s   distbp/DDP "
              f"{results[model]['vs_ddp']:.2f}x  distbp/torch {results[model]['vs_torch']:.2f}x",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
