"""A small MLP learns a generated problem: the loss falls by a large factor."""

import numpy as np
import pytest
from conftest import mlp

import distbp


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_mlp_learns_xor_like_problem(optimizer):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (512, 2))
    y = ((x[:, 0] * x[:, 1]) > 0).astype(np.int64)  # XOR of signs: not linearly separable
    model = mlp([2, 32, 32, 2], distbp.ReLU, seed=1, dtype=np.float32)
    opt = {"sgd": lambda: distbp.SGD(model, lr=0.2, momentum=0.9),
           "adam": lambda: distbp.Adam(model, lr=0.01),
           "adamw": lambda: distbp.AdamW(model, lr=0.01)}[optimizer]()
    loss_fn = distbp.SoftmaxCrossEntropy()
    first = model.loss_and_backward(x, y, loss_fn)
    for _ in range(60):
        for batch in np.array_split(rng.permutation(512), 8):
            model.loss_and_backward(x[batch], y[batch], loss_fn)
            opt.step()
    last = model.loss_and_backward(x, y, loss_fn)
    assert last < first / 10
    assert loss_fn.correct(model.forward(x), y) / 512 > 0.95
