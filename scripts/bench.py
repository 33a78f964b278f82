"""Speed of distbp's training step against the GEMM floor, at 1 and 2 ranks.

    python scripts/bench.py [--models small,medium,wide,cnn] [--ranks 1,2] [--json out.json]
    python scripts/bench.py --ranks 2 --threads 1 --models medium,wide --exact-overhead 3

For each model (MLPs; cnn and lstm, the --model specs) it launches `mpirun -n R python
scripts/bench.py --worker ...`, which times steps of the real DataParallel step
(synthetic float32 data, plain SGD), the same GEMMs alone (the floor: forward x@W,
backward W-gradient and input-gradient, no input-gradient for the first layer; a
Conv2D's are those of its im2col patches; none for recurrent layers), the gradient
Allreduce alone, and the time each step spends waiting in its Allreduce (exposed
communication). Medians and spreads over --repeats runs of --steps steps.
OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are unset for the workers; the BLAS that ran is
reported. --exact-overhead: exact mode against the default step, alternating launches.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MODELS = {"small": ([784, 128, 10], 64), "medium": ([784, 1024, 1024, 10], 256),
          "wide": ([784, 4096, 4096, 10], 128)}
SPECS = {"cnn": ("cnn", 64), "lstm": ("lstm128", 64)}  # --model specs on 28x28 images


def build(name: str):
    """The distbp model called `name` (MODELS' MLPs, or SPECS on 784-pixel rows) and its
    per-rank batch."""
    import distbp
    from distbp.nn.spec import CNN_SPEC, build_layers

    if name in SPECS:
        spec, per_rank = SPECS[name]
        layers = build_layers(CNN_SPEC if spec == "cnn" else spec, (784,), 10)
        return distbp.Sequential(layers, seed=0), per_rank
    sizes, per_rank = MODELS[name]
    layers: list = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [distbp.Dense(fan_in, fan_out), distbp.ReLU()]
    return distbp.Sequential(layers[:-1], seed=0), per_rank


def worker(args: argparse.Namespace) -> None:
    import numpy as np

    import distbp
    from distbp.dist.choose import make_trainer
    from distbp.dist.comm import world
    from distbp.dist.threads import auto_threads, set_blas_threads

    comm = world()
    blas = set_blas_threads(args.threads or auto_threads(comm.local_size))
    model, per_rank = build(args.model)
    if args.global_batch:
        per_rank = args.global_batch // comm.size
    trainer = make_trainer(model, distbp.SGD(model, lr=0.01), distbp.SoftmaxCrossEntropy(),
                           comm, args.reduce, exact=args.exact,
                           exact_shard_size=args.exact_shard_size,
                           compression=args.grad_compression,
                           powersgd_warmup=args.powersgd_warmup)
    rng = np.random.default_rng(comm.rank)
    x = rng.standard_normal((per_rank, 784)).astype(np.float32)
    y = rng.integers(0, 10, per_rank)
    global_count = per_rank * comm.size
    rows = np.arange(comm.rank * per_rank, (comm.rank + 1) * per_rank)  # Dropout's masks

    waits: list[float] = []
    reduce, node_barrier = comm.Allreduce, comm.node_barrier

    def timed(function):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            function(*args, **kwargs)
            waits.append(time.perf_counter() - start)
        return wrapper

    comm.Allreduce, comm.node_barrier = timed(reduce), timed(node_barrier)
    cross = getattr(trainer.reduction, "cross", None)  # --reduce hierarchical's, between nodes
    if cross is not None:  # every verb the reductions use between nodes
        for verb in ("Allreduce", "Alltoall", "Allgather"):
            setattr(cross, verb, timed(getattr(cross, verb)))
    runs, sent = [], wire_bytes()
    for repeat in range(args.repeats + 1):  # the first run warms up
        waits.clear()
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.step(x, y, global_count, rows=rows)
        elapsed = (time.perf_counter() - start) / args.steps
        if repeat:
            runs.append((elapsed, sum(waits) / args.steps))
        else:
            sent = wire_bytes()  # from the end of the warm-up run
    sent = (wire_bytes() - sent) / (args.steps * args.repeats)
    comm.Allreduce, comm.node_barrier = reduce, node_barrier

    floor = gemm_floor(model, x, args)
    allreduce_buffer = np.zeros(model.num_parameters + 3, dtype=np.float32)
    allreduce_alone = median_time(lambda: comm.Allreduce(allreduce_buffer), args, comm)
    everyone = comm.allgather(runs)
    if comm.rank == 0:
        step_times = sorted(max(r[i][0] for r in everyone) for i in range(args.repeats))
        exposed = sorted(max(r[i][1] for r in everyone) for i in range(args.repeats))
        print(json.dumps({"model": args.model, "ranks": comm.size, "per_rank": per_rank,
                          "step_s": step_times, "exposed_comm_s": exposed,
                          "gemm_floor_s": floor, "allreduce_s": allreduce_alone,
                          "params": model.num_parameters, "blas": blas,
                          "reduce": trainer.reduction.describe(), "nodes": comm.nodes,
                          "wire_bytes_per_step": sent}))


def wire_bytes(interface: str = "eth0") -> int:
    """Bytes this network namespace has sent through `interface` (/proc/net/dev is per
    namespace: on the cluster in a box, one node's link); 0 without it."""
    with open("/proc/net/dev") as table:
        for line in table:
            name, _, fields = line.partition(":")
            if name.strip() == interface:
                return int(fields.split()[8])  # transmit bytes
    return 0


def conv_gemms(layer, patches) -> tuple[list, list, list]:
    """A Conv2D's GEMMs as (a, b, out) for np.matmul(a, b, out=out), in the column blocks
    the layer runs them in, on a copy of its patches (its cache's cols, the bias's ones
    row dropped): (forward W @ cols, weight gradient dY @ cols.T, input gradient
    W.T @ dY)."""
    import numpy as np

    from distbp.nn.conv import blocks

    spans, cols = blocks(patches), patches[:-1].copy()
    weights = layer.W.reshape(layer.out_channels, -1)
    acts = np.empty((weights.shape[0], cols.shape[1]), dtype=cols.dtype)
    dweights, dcols = np.empty_like(weights), np.empty_like(cols)
    return ([(weights, cols[:, b], acts[:, b]) for b in spans],
            [(acts[:, b], cols[:, b].T, dweights) for b in spans],
            [(weights.T, acts[:, b], dcols[:, b]) for b in spans])


def gemm_floor(model, x, args) -> float:
    """The step's GEMMs alone, same shapes, into preallocated outputs: per Dense x@W, per
    Conv2D its im2col GEMMs (conv_gemms); backward the weight gradient and the input
    gradient (none for the first layer with weights). NaN with recurrent layers."""
    import numpy as np

    from distbp.nn.conv import Conv2D
    from distbp.nn.dense import Dense
    from distbp.nn.recurrent import Recurrent

    if any(isinstance(layer, Recurrent) for layer in model.layers):
        return float("nan")
    trained = [layer for layer in model.layers if layer.param_shapes()]
    _, caches = model.forward_train(x)
    forward, backward = [], []  # (a, b, out): np.matmul(a, b, out=out)
    for layer, cache in zip(model.layers, caches, strict=True):
        if isinstance(layer, Conv2D):
            steps = conv_gemms(layer, cache[0])
        elif isinstance(layer, Dense):
            inputs = np.ones((len(x), layer.W.shape[0]), dtype=np.float32)
            acts = np.empty((len(x), layer.W.shape[1]), dtype=np.float32)
            steps = [(inputs, layer.W, acts)], [(inputs.T, acts, np.empty_like(layer.W))], \
                [(acts, layer.W.T, np.empty_like(inputs))]
        else:
            continue
        forward += steps[0]
        backward = steps[1] + (steps[2] if layer is not trained[0] else []) + backward

    def gemms():
        for a, b, out in forward + backward:
            np.matmul(a, b, out=out)

    return median_time(gemms, args)


def median_time(function, args, comm=None) -> float:
    samples = []
    for repeat in range(args.repeats + 1):
        if comm is not None:
            comm.Barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            function()
        if repeat:
            samples.append((time.perf_counter() - start) / args.steps)
    return sorted(samples)[len(samples) // 2]


def launch(model: str, ranks: int, args: argparse.Namespace) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    mpirun = str(Path(sys.executable).parent / "mpirun")
    command = [mpirun, "-n", str(ranks), sys.executable, __file__, "--worker", "--model", model,
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--threads", str(args.threads), "--reduce", args.reduce,
               "--exact-shard-size", str(args.exact_shard_size),
               "--global-batch", str(args.global_batch)] + (["--exact"] if args.exact else [])
    out = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
    if out.returncode != 0:
        raise SystemExit(f"bench worker failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def summarize(result: dict) -> dict:
    step = result["step_s"][len(result["step_s"]) // 2]
    result.update(step_median_s=step, spread=(result["step_s"][-1] - result["step_s"][0]) / step,
                  samples_per_s=result["per_rank"] * result["ranks"] / step,
                  floor_ratio=step / result["gemm_floor_s"],
                  exposed_median_s=result["exposed_comm_s"][len(result["exposed_comm_s"]) // 2])
    return result


def exact_overhead(args: argparse.Namespace) -> None:
    """Per model and rank count: the default step and exact mode's, launched alternately
    args.exact_overhead times each; medians (spread = (max - min) / median)."""
    print(f"{'model':8} {'ranks':>5} {'default ms':>11} {'spread':>7} {'exact ms':>9} "
          f"{'spread':>7} {'exact/default':>13}")
    results = []
    for model in args.models.split(","):
        for ranks in map(int, args.ranks.split(",")):
            steps: dict[bool, list[float]] = {False: [], True: []}
            for _ in range(args.exact_overhead):
                for exact in (False, True):
                    args.exact = exact
                    steps[exact].append(summarize(launch(model, ranks, args))["step_median_s"])
            median = {mode: sorted(times)[len(times) // 2] for mode, times in steps.items()}
            spread = {mode: (max(times) - min(times)) / median[mode]
                      for mode, times in steps.items()}
            results.append({"model": model, "ranks": ranks, "default_s": steps[False],
                            "exact_s": steps[True], "ratio": median[True] / median[False]})
            print(f"{model:8} {ranks:>5} {1e3 * median[False]:>11.2f} {spread[False]:>6.0%} "
                  f"{1e3 * median[True]:>9.2f} {spread[True]:>6.0%} "
                  f"{median[True] / median[False]:>13.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="medium")
    parser.add_argument("--models", default="small,medium,wide")
    parser.add_argument("--ranks", default="1,2")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="BLAS threads per rank (0 auto)")
    parser.add_argument("--reduce", default="auto",
                        choices=("auto", "shared", "allreduce", "hierarchical"))
    parser.add_argument("--exact", action="store_true", help="exact mode (--exact)")
    parser.add_argument("--grad-compression", default="none",
                        choices=("none", "bf16", "fp16", "powersgd"))
    parser.add_argument("--powersgd-warmup", type=int, default=5,
                        help="exact steps first (the warm-up run's steps should cover them)")
    parser.add_argument("--exact-shard-size", type=int, default=128)
    parser.add_argument("--global-batch", type=int, default=0,
                        help="split this global batch over the ranks (default: the model's "
                             "fixed per-rank batch)")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--exact-overhead", type=int, default=0, metavar="ROUNDS",
                        help="instead: exact mode's step against the default one, ROUNDS "
                             "alternating launches of each")
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.exact_overhead:
        return exact_overhead(args)
    results = []
    print(f"{'model':8} {'ranks':>5} {'samples/s':>11} {'step ms':>9} {'spread':>7} "
          f"{'floor ms':>9} {'step/floor':>10} {'allreduce ms':>12} {'exposed ms':>10}")
    for model in args.models.split(","):
        for ranks in map(int, args.ranks.split(",")):
            r = summarize(launch(model, ranks, args))
            results.append(r)
            print(f"{model:8} {ranks:>5} {r['samples_per_s']:>11,.0f} "
                  f"{1e3 * r['step_median_s']:>9.2f} {r['spread']:>6.0%} "
                  f"{1e3 * r['gemm_floor_s']:>9.2f} {r['floor_ratio']:>10.2f} "
                  f"{1e3 * r['allreduce_s']:>12.3f} {1e3 * r['exposed_median_s']:>10.3f}",
                  flush=True)
    print(f"BLAS: {results[0]['blas']}")
    for model in args.models.split(","):
        by_ranks = {r["ranks"]: r for r in results if r["model"] == model}
        if 1 in by_ranks and 2 in by_ranks:
            efficiency = by_ranks[2]["samples_per_s"] / (2 * by_ranks[1]["samples_per_s"])
            print(f"{model}: 2-rank scaling efficiency {efficiency:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
