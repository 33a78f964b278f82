"""An alpha-beta model of one distbp training step on many nodes, calibrated here.

    python scripts/scaling_model.py [--bench results.json] [--alpha-us 2] [--gbps 100]

Per-rank compute comes from this machine's measured single-thread GEMM rate (FLOPs of
the step's GEMMs / rate) times the measured step/floor overhead; the reduction inside a
node from its measured memory bandwidth (each rank reads every rank's gradient part,
then updates its part: about (ranks + 3) x P x 4 bytes through the node's memory); the
reduction across nodes is a ring Allreduce of the node-summed gradient among nodes
(2(N-1) alpha + 2(N-1)/N P x 4 bytes / bandwidth) or recursive doubling (log2 N alpha +
log2 N P x 4 / bandwidth), whichever is faster, with no overlap with compute (distbp does
not overlap). Weak scaling: the per-rank batch of scripts/bench.py, 32 ranks per node.
With --bench (JSON from scripts/bench.py --json), it first compares its 1- and 2-rank
predictions with the measurements. With --links (JSON from scripts/multinode_bench.py
--json, the cluster in a box) it fits each emulated link's alpha and bandwidth to the
measured 2-node Allreduce ladder, checks its 2-node step predictions against the
measured steps, and projects 8-64 nodes at 10/25/100 Gbit/s with the fitted latency and
the fitted share of the nominal bandwidth: flat (every rank in one ring: each node's link
carries ranks-per-node times the bytes) against hierarchical (one exchange per node),
each without and with perfect overlap of the inter-node part with compute.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

MODELS = {"small": ([784, 128, 10], 64), "medium": ([784, 1024, 1024, 10], 256),
          "wide": ([784, 4096, 4096, 10], 128)}


def gemm_flops(sizes: list[int], batch: int) -> float:
    """forward, weight gradient and input gradient (none for the first layer)."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    per_pair = [2.0 * batch * a * b for a, b in pairs]
    return 2 * sum(per_pair) + sum(per_pair[1:])


def measure_gemm_rate() -> float:
    """Single-thread float32 GEMM rate, FLOP/s (threadpoolctl limits BLAS to 1 thread)."""
    from threadpoolctl import threadpool_limits

    a = np.ones((256, 1024), np.float32)
    b = np.ones((1024, 1024), np.float32)
    out = np.empty((256, 1024), np.float32)
    with threadpool_limits(1, "blas"):
        np.matmul(a, b, out=out)
        start, reps = time.perf_counter(), 20
        for _ in range(reps):
            np.matmul(a, b, out=out)
        return reps * 2.0 * 256 * 1024 * 1024 / (time.perf_counter() - start)


def measure_bandwidth() -> float:
    """Bytes/s of a large in-place add (reads two arrays, writes one)."""
    x, y = np.ones(16 << 20, np.float32), np.ones(16 << 20, np.float32)
    np.add(x, y, out=x)
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        np.add(x, y, out=x)
    return reps * 3 * x.nbytes / (time.perf_counter() - start)


def step_time(model: str, nodes: int, ranks_per_node: int, rate: float, node_bw: float,
              alpha: float, link_bw: float, overhead: float,
              fixed: float = 150e-6) -> dict[str, float]:
    sizes, batch = MODELS[model]
    params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    nbytes = 4.0 * params
    compute = gemm_flops(sizes, batch) / rate * overhead + fixed  # + Python's per-step cost
    intra = (ranks_per_node + 3) * nbytes / node_bw if ranks_per_node > 1 else 3 * nbytes / node_bw
    if nodes > 1:
        ring = 2 * (nodes - 1) * alpha + 2 * (nodes - 1) / nodes * nbytes / link_bw
        doubling = math.ceil(math.log2(nodes)) * (alpha + nbytes / link_bw)
        inter = min(ring, doubling)
    else:
        inter = 0.0
    total = compute + intra + inter
    return {"compute": compute, "intra": intra, "inter": inter, "total": total,
            "samples_per_s": nodes * ranks_per_node * batch / total}


def fit_link(ladder: list[list[float]]) -> tuple[float, float]:
    """(alpha seconds, bytes/s) of a 2-node ring Allreduce, t = 2 alpha + bytes / bw: the
    bandwidth from the two largest sizes of the measured ladder of (bytes, seconds), alpha
    from the smallest (a least-squares line lets the large sizes swamp the latency)."""
    rows = sorted(ladder)
    (small, t_small), (b1, t1), (b2, t2) = rows[0], rows[-2], rows[-1]
    bandwidth = (b2 - b1) / (t2 - t1)
    return max((t_small - small / bandwidth) / 2, 1e-6), bandwidth


def nominal(rate: str) -> float:
    """Bytes/s of a tc rate such as '10gbit' or '100mbit'."""
    number = float(rate.rstrip("gmkbit"))
    return number * {"g": 1e9, "m": 1e6, "k": 1e3}[rate.rstrip("bit")[-1]] / 8


def links_report(path: str, rate: float, bandwidth: float, overhead: float) -> None:
    data = json.load(open(path))
    fitted = {name: fit_link(ladder) for name, ladder in data["links"].items()}
    print("\nemulated links (cluster in a box), fitted to the 2-node Allreduce ladder:")
    for name, (alpha, link) in fitted.items():
        print(f"  {name:>8}: alpha {1e6 * alpha:6.1f} us, {link / 1e9:6.3f} GB/s "
              f"({link / nominal(name):.0%} of nominal)")
    print("\n2-node predictions against the measured steps (1 rank per node):")
    for row in data["steps"]:
        if row["layout"] != "2x1-allreduce" or row["rate"] not in fitted:
            continue
        alpha, link = fitted[row["rate"]]
        predicted = step_time(row["model"], 2, 1, rate, bandwidth, alpha, link, overhead)
        print(f"  {row['rate']:>8} {row['model']}: predicted {1e3 * predicted['total']:7.1f} ms "
              f"(inter-node {1e3 * predicted['inter']:6.1f}), measured "
              f"{1e3 * row['step_median_s']:7.1f} ms "
              f"({row['step_median_s'] / predicted['total']:.2f}x)")
    best = max(fitted, key=lambda name: nominal(name))
    alpha, share = fitted[best][0], fitted[best][1] / nominal(best)
    print(f"\nprojection, medium MLP, 32 ranks/node, alpha {1e6 * alpha:.0f} us and "
          f"{share:.0%} of nominal bandwidth (the {best} fit); step ms, flat / hierarchical "
          "/ hierarchical with the inter-node part fully overlapped:")
    node_counts = [2, 8, 16, 32, 64]
    print(f"{'link':>9}" + "".join(f"{n:>22}" for n in node_counts))
    for gbps in (10, 25, 100):
        link = gbps * 1e9 / 8 * share
        cells = []
        for nodes in node_counts:
            hier = step_time("medium", nodes, 32, rate, bandwidth * 16, alpha, link, overhead)
            flat = step_time("medium", nodes, 32, rate, bandwidth * 16, alpha, link / 32,
                             overhead)
            overlapped = max(hier["compute"], hier["inter"]) + hier["intra"]
            cells.append(f"{1e3 * flat['total']:6.1f}/{1e3 * hier['total']:5.1f}/"
                         f"{1e3 * overlapped:5.1f}")
        print(f"{gbps:>6} Gb" + "".join(f"{c:>22}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", help="scripts/bench.py --json output, to validate against")
    parser.add_argument("--links", help="scripts/multinode_bench.py --json output: fit links")
    parser.add_argument("--alpha-us", type=float, default=2.0, help="inter-node latency, us")
    parser.add_argument("--gbps", type=float, default=100.0, help="inter-node bandwidth, Gb/s")
    parser.add_argument("--ranks-per-node", type=int, default=32)
    parser.add_argument("--overhead", type=float, default=1.2,
                        help="step / GEMM-floor ratio outside communication (measured 1.2 "
                             "on medium at 2 ranks)")
    args = parser.parse_args()
    rate, bandwidth = measure_gemm_rate(), measure_bandwidth()
    alpha, link = args.alpha_us * 1e-6, args.gbps * 1e9 / 8
    print(f"calibration on this machine: GEMM {rate / 1e9:.1f} GFLOP/s per core (1 thread), "
          f"memory {bandwidth / 1e9:.1f} GB/s; network model: alpha {args.alpha_us} us, "
          f"{args.gbps:g} Gb/s")
    if args.bench:
        print("\nvalidation against scripts/bench.py on this machine (one node):")
        for result in json.load(open(args.bench)):
            if result["ranks"] == 1:
                continue  # one rank runs all cores' BLAS threads: not the model's case
            predicted = step_time(result["model"], 1, result["ranks"], rate, bandwidth,
                                  alpha, link, args.overhead)
            print(f"  {result['model']:7} {result['ranks']} ranks: predicted "
                  f"{1e3 * predicted['total']:8.2f} ms, measured "
                  f"{1e3 * result['step_median_s']:8.2f} ms "
                  f"({result['step_median_s'] / predicted['total']:.2f}x)")
    if args.links:
        links_report(args.links, rate, bandwidth, args.overhead)
    print(f"\nprojected step (ms) and efficiency (compute share of the step, 100% = no "
          f"reduction cost), {args.ranks_per_node} ranks/node:")
    node_counts = [1, 2, 4, 8, 16, 32, 64]
    print(f"{'model':8}" + "".join(f"{n:>15}" for n in node_counts))
    for model in MODELS:
        cells = []
        for nodes in node_counts:
            t = step_time(model, nodes, args.ranks_per_node, rate, bandwidth * args.ranks_per_node
                          / 2, alpha, link, args.overhead)
            cells.append(f"{1e3 * t['total']:8.1f} {t['compute'] / t['total']:5.0%}")
        print(f"{model:8}" + "".join(f"{c:>15}" for c in cells))
    print("\nuncertain: the node's memory bandwidth with 32 ranks (scaled here from this "
          "2-core machine as bandwidth x ranks / 2, optimistic on real sockets), the "
          "network's alpha and achievable bandwidth (defaults are InfiniBand-class "
          "nominal values), MPI's choice of algorithm, and stragglers.")


if __name__ == "__main__":
    main()
