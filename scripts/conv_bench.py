"""Convolution throughput against the GEMM floor of its im2col GEMMs (one BLAS thread).

    python scripts/conv_bench.py [--batch 64] [--steps 10]

For each Conv2D of the `--model cnn` stack, at the per-rank batch: images/s of its
forward + backward, and of its three GEMMs alone (forward W @ cols, backward dY @ cols.T
and W.T @ dY, same shapes, in the same column blocks) — the floor. Then the whole CNN's
training step in images/s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

import distbp
from distbp.dist.step import DataParallel
from distbp.nn.conv import Conv2D, blocks
from distbp.nn.spec import CNN_SPEC, build_layers
from distbp.nn.workspace import from_chwb


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

        cols = cache[0][:-1]  # (C k k, OH OW B): the patches without the bias's row of ones
        weights = layer.W.reshape(layer.out_channels, -1)
        flat = np.empty((layer.out_channels, cols.shape[1]), np.float32)
        dweights = np.empty_like(weights)
        dcols = np.empty_like(cols)

        spans = blocks(cache[0])  # the column blocks the layer's GEMMs run in

        def gemms(cols=cols, weights=weights, flat=flat, dweights=dweights, dcols=dcols,
                  need_dx=need_dx, spans=spans):
            for block in spans:
                np.matmul(weights, cols[:, block], out=flat[:, block])
            for block in spans:  # (the layer adds up the blocks' weight gradients)
                np.matmul(flat[:, block], cols[:, block].T, out=dweights)
            if need_dx:
                for block in spans:
                    np.matmul(weights.T, flat[:, block], out=dcols[:, block])

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
