"""distbp against PyTorch on CPU, in one invocation, alternating, same models and batches.

    python scripts/compare_torch.py [--models small,medium,wide,cnn,lstm] [--rounds 3]
        [--json out.json]

Three contenders per model, each trained with plain SGD on random float32 data:
  distbp  mpirun -n 2, one BLAS thread per rank (scripts/bench.py's worker);
  DDP     PyTorch DistributedDataParallel, gloo, 2 processes, 1 thread each, same
          per-rank batch;
  torch   plain PyTorch in one process with 2 threads and the 2-rank global batch.
The lstm row adds one process, one thread each (distbp 1 rank, torch 1 thread), the
shapes of `--model lstm128` on 28x28 images. The cnn row is `--model cnn` (conv32, bn,
relu, pool2, conv64, bn, relu, pool2, dense256, bn, relu, dropout0.4) against torch's
same stack, whose BatchNorm is plain per-rank (distbp's sums its statistics over the
ranks: one more small Allreduce per BatchNorm). Rounds alternate the contenders; the
medians of the rounds give samples/s and the ratios. The header names the CPU, the BLAS
kernel that ran and torch's backend; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for
every process. torch is optional (pip install torch==2.13.0 gives a CPU build): without
it this says so and exits 0.
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
from bench import MODELS, SPECS, launch, summarize, wire_bytes  # noqa: E402
from multinode_bench import cpu_model  # noqa: E402


def build(torch, name):
    """torch's model called `name` (as scripts/bench.py builds distbp's), its input shape
    per example and its per-rank batch."""
    nn = torch.nn
    if name == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 256), nn.BatchNorm1d(256), nn.ReLU(),
            nn.Dropout(0.4), nn.Linear(256, 10)), (1, 28, 28), SPECS[name][1]
    if name == "lstm":
        class LastStep(nn.Module):  # lstm128: the last step's hidden state -> dense10
            def __init__(self) -> None:
                super().__init__()
                self.lstm, self.out = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)

            def forward(self, x):
                return self.out(self.lstm(x)[0][:, -1])
        return LastStep(), (28, 28), SPECS[name][1]
    sizes, per_rank = MODELS[name]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1]), (sizes[0],), per_rank


def time_steps(torch, model, batch, shape, steps, repeats, barrier=lambda: None) -> list[float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = torch.randn(batch, *shape), torch.randint(0, 10, (batch,))
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
    torch.manual_seed(0)
    net, shape, per_rank = build(torch, args.model)
    model = torch.nn.parallel.DistributedDataParallel(net)
    times = time_steps(torch, model, per_rank, shape, args.steps, args.repeats, dist.barrier)
    everyone = [None] * world
    dist.all_gather_object(everyone, times)
    if rank == 0:
        queue.put([max(t[i] for t in everyone) for i in range(args.repeats)])
    dist.barrier()
    dist.destroy_process_group()


def ddp_node(args) -> None:
    """One DDP rank on a node of the cluster in a box (scripts/multinode_bench.py starts
    one per node): gloo over eth0, the communication hook asked for, bytes this node sent
    per timed step from its /proc/net/dev. Rank 0 prints the JSON. (DDP's powerSGD_hook
    was tried too: with gloo across the namespaces it stopped at its first compressed
    step with a gloo "collective mismatch", so it is not offered.)"""
    import torch
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR=args.master, MASTER_PORT=str(args.port),
                      GLOO_SOCKET_IFNAME="eth0")
    dist.init_process_group("gloo", rank=args.rank, world_size=args.world)
    torch.manual_seed(0)
    net, shape, per_rank = build(torch, args.model)
    model = torch.nn.parallel.DistributedDataParallel(net)
    if args.hook == "fp16":
        model.register_comm_hook(None, default_hooks.fp16_compress_hook)
    counts: list[int] = []

    def barrier() -> None:  # each timed repeat starts here: count the bytes from the first
        dist.barrier()
        counts.append(wire_bytes())

    times = time_steps(torch, model, per_rank, shape, args.steps, args.repeats, barrier)
    sent = (wire_bytes() - counts[1]) / (args.steps * args.repeats)
    everyone = [None] * args.world
    dist.all_gather_object(everyone, (times, sent))
    if args.rank == 0:
        step_times = sorted(max(t[0][i] for t in everyone) for i in range(args.repeats))
        print(json.dumps({"step_s": step_times, "per_rank": per_rank, "ranks": args.world,
                          "wire_bytes_per_step": everyone[0][1], "torch": torch.__version__,
                          "reduce": f"DDP gloo, hook {args.hook}"}))
    dist.barrier()
    dist.destroy_process_group()


def torch_worker(args) -> None:
    import torch
    import torch.multiprocessing as mp

    net, shape, per_rank = build(torch, args.model)
    processes = 1 if args.mode == "torch1" else 2  # examples: one rank's batch, or two
    if args.mode == "ddp":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        queue = mp.get_context("spawn").SimpleQueue()
        mp.spawn(ddp_rank, args=(2, port, args, queue), nprocs=2, join=True)
        times = queue.get()
    else:
        torch.set_num_threads(processes)  # torch: 2 threads, torch1: 1
        torch.manual_seed(0)
        times = time_steps(torch, net, processes * per_rank, shape, args.steps, args.repeats)
    print(json.dumps({"step_s": sorted(times), "samples": processes * per_rank,
                      "threads": "1 per rank" if args.mode == "ddp" else torch.get_num_threads(),
                      "torch": torch.__version__, "backend": backend(torch)}))


def backend(torch) -> str:
    """torch's CPU backend as its build reports it: version, CPU capability, BLAS, oneDNN."""
    config = torch.__config__.show()
    blas = next((line.split("=", 1)[1].strip(" ,") for line in config.split()
                 if line.startswith("BLAS_INFO=")), "?")
    return (f"torch {torch.__version__}, CPU capability "
            f"{torch.backends.cpu.get_cpu_capability()}, BLAS {blas}, oneDNN "
            f"{'on' if torch.backends.mkldnn.is_available() else 'off'}")


def run_torch(mode: str, model: str, args) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    command = [sys.executable, __file__, "--torch-worker", "--mode", mode, "--model", model,
               "--steps", str(args.steps), "--repeats", str(args.repeats)]
    for attempt in range(3):  # gloo's teardown now and then aborts a finished DDP run
        out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        if out.returncode == 0:
            return json.loads(out.stdout.strip().splitlines()[-1])
        print(f"torch {mode} worker failed (attempt {attempt + 1} of 3): "
              f"{out.stderr.strip().splitlines()[-1] if out.stderr.strip() else ''}",
              file=sys.stderr)
    raise SystemExit(f"torch {mode} worker failed:\n{out.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="ddp", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="medium", help=argparse.SUPPRESS)
    parser.add_argument("--models", default="small,medium,wide,cnn,lstm")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--ddp-node", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--rank", "--world", "--port"):
        parser.add_argument(hidden, type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--master", default="10.77.0.1", help=argparse.SUPPRESS)
    parser.add_argument("--hook", default="none", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    if args.ddp_node:
        return ddp_node(args)
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch is not installed: pip install torch==2.13.0 (CPU build) to compare; "
              "skipping")
        return
    args.threads, args.reduce, args.exact, args.exact_shard_size, args.global_batch = \
        0, "auto", False, 128, 0
    header = {"cpu": cpu_model(), "cores": os.cpu_count()}  # + what ran: from the runs
    print(f"CPU: {header['cpu']} ({header['cores']} cores)", flush=True)
    results: dict = {"header": header, "rows": {}}
    for model in args.models.split(","):
        contenders = ["distbp", "ddp", "torch"] + (["distbp1", "torch1"] if model == "lstm"
                                                   else [])
        samples: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):  # alternate the contenders
            for name in contenders:
                if name.startswith("distbp"):
                    one = name == "distbp1"
                    run = argparse.Namespace(**{**vars(args), "threads": 1 if one else 0})
                    ours = summarize(launch(model, 1 if one else 2, run))
                    samples[name].append(ours["samples_per_s"])
                    header.setdefault(f"{name}_blas", ours["blas"])
                else:
                    out = run_torch(name, model, args)
                    samples[name].append(out["samples"] / out["step_s"][len(out["step_s"]) // 2])
                    if "backend" in out and "torch" not in header:
                        header["torch"] = out["backend"]
                        print(f"BLAS: distbp {header['distbp_blas']}; {out['backend']}",
                              flush=True)
        medians = {k: sorted(v)[len(v) // 2] for k, v in samples.items()}
        row = {"samples_per_s": medians, "rounds": samples,
               "vs_ddp": medians["distbp"] / medians["ddp"],
               "vs_torch": medians["distbp"] / medians["torch"], **header}
        line = (f"{model:7} distbp {medians['distbp']:>10,.0f}  DDP {medians['ddp']:>10,.0f}  "
                f"torch(2 threads) {medians['torch']:>10,.0f}  samples/s   distbp/DDP "
                f"{row['vs_ddp']:.2f}x  distbp/torch {row['vs_torch']:.2f}x")
        if "torch1" in medians:
            row["one_thread_vs_torch"] = medians["distbp1"] / medians["torch1"]
            line += (f"\n{'':7} one process, one thread: distbp {medians['distbp1']:,.0f}  "
                     f"torch {medians['torch1']:,.0f}  distbp/torch "
                     f"{row['one_thread_vs_torch']:.2f}x")
        results["rows"][model] = row
        print(line, flush=True)
        if args.json:  # every row as soon as it is measured
            Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
