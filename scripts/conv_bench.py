"""Convolution throughput against the GEMM floor of its im2col GEMMs (one BLAS thread).

    python scripts/conv_bench.py [--batch 64] [--steps 10]

For each Conv2D of the `--model cnn` stack, at the per-rank batch: images/s of its
forward + backward, and of its three GEMMs alone (forward W @ cols, backward dY @ cols.T
and W.T @ dY, same shapes, in the same column blocks) — the floor. Then the whole CNN's
training step in images/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import distbp
from distbp.dist.step import DataParallel
from distbp.nn.conv import Conv2D
from distbp.nn.spec import CNN_SPEC, build_layers
from distbp.nn.workspace import from_chwb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import conv_gemms  # noqa: E402 - a sibling script: the floor is measured alike


def median_seconds(function, steps: int, repeats: int = 5) -> float:
    function()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            function()
        samples.append((time.perf_counter() - start) / steps)
    return sorted(samples)[len(samples) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    threadpool_limits(1, "blas")
    rng = np.random.default_rng(0)
    model = distbp.Sequential(build_layers(CNN_SPEC, (784,), 10), seed=0)
    x = rng.standard_normal((args.batch, 784)).astype(np.float32)
    y = rng.integers(0, 10, args.batch)
    _, caches = model.forward_train(x)
    print(f"batch {args.batch}, float32, 1 BLAS thread")
    for index, layer in enumerate(model.layers):
        if not isinstance(layer, Conv2D):
            continue
        batch, channels, height, width = caches[index][1]  # the conv's input shape
        # inputs and gradients held (C, H, W, B), as the layers around a conv hand them over
        data = from_chwb(rng.standard_normal((channels, height, width, batch),
                                             dtype=np.float32))
        result, cache = layer.forward(data, model.workspaces[index])
        grad = np.empty_like(result)
        grad[...] = rng.standard_normal(result.shape, dtype=np.float32)

        need_dx = index > 1  # the first conv (after Reshape) skips its input gradient

        def layer_step(layer=layer, data=data, grad=grad, ws=model.workspaces[index],
                       need_dx=need_dx):
            _, cache = layer.forward(data, ws)
            layer.backward(grad, cache, need_dx=need_dx, ws=ws)

        forward, weight_grad, input_grad = conv_gemms(layer, cache[0])
        floor_gemms = forward + weight_grad + (input_grad if need_dx else [])

        def gemms(floor_gemms=floor_gemms):
            for a, b, out in floor_gemms:
                np.matmul(a, b, out=out)

        measured, floor = median_seconds(layer_step, args.steps), median_seconds(gemms,
                                                                                args.steps)
        print(f"{layer!r}: {args.batch / measured:9,.0f} images/s, GEMM floor "
              f"{args.batch / floor:9,.0f} images/s ({measured / floor:.2f}x the floor)")
    trainer = DataParallel(model, distbp.AdamW(model, lr=1e-3),
                                           distbp.SoftmaxCrossEntropy())
    step = median_seconds(lambda: trainer.step(x, y, args.batch, rows=np.arange(args.batch)),
                          args.steps)
    print(f"whole CNN training step: {args.batch / step:,.0f} images/s ({1e3 * step:.1f} ms)")


if __name__ == "__main__":
    main()
