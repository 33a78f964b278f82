"""Optimizers against hand-computed updates (torch.optim's documented formulas)."""

import math

import numpy as np
import pytest

import distbp
from distbp.optim.optimizers import CHUNK


def tiny_model():
    model = distbp.Sequential([distbp.Dense(2, 1)], dtype=np.float64)
    model.flat_params[...] = [1.0, -2.0, 0.5]
    return model


GRADS = [np.array([0.1, -0.2, 0.3]), np.array([-0.4, 0.5, 0.6]), np.array([0.7, 0.0, -0.1])]


def run(optimizer_factory):
    model = tiny_model()
    optimizer = optimizer_factory(model)
    for grad in GRADS:
        model.flat_grads[...] = grad
        optimizer.step()
    return model.flat_params


def reference_sgd(lr, momentum=0.0, nesterov=False, wd=0.0):
    p, buf = np.array([1.0, -2.0, 0.5]), None
    for g in GRADS:
        g = g + wd * p
        if momentum:
            buf = g.copy() if buf is None else momentum * buf + g
            g = g + momentum * buf if nesterov else buf
        p = p - lr * g
    return p


def reference_adam(lr, b1, b2, eps, wd, decoupled):
    p, m, v = np.array([1.0, -2.0, 0.5]), np.zeros(3), np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        if decoupled:
            p = p * (1 - lr * wd)
        else:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps * 1.0)  # torch: eps added after bias fix
    return p


def test_plain_sgd_by_hand():
    # p1 = p0 - 0.1 * g: [1 - 0.01, -2 + 0.02, 0.5 - 0.03], then two more steps
    expected = np.array([1.0, -2.0, 0.5]) - 0.1 * sum(GRADS)
    np.testing.assert_allclose(run(lambda m: distbp.SGD(m, lr=0.1)), expected, rtol=1e-14)


@pytest.mark.parametrize("momentum,nesterov,wd", [(0.9, False, 0.0), (0.9, True, 0.0),
                                                  (0.5, False, 0.1), (0.8, True, 0.05),
                                                  (0.0, False, 0.2)])
def test_sgd_variants(momentum, nesterov, wd):
    got = run(lambda m: distbp.SGD(m, lr=0.1, momentum=momentum, nesterov=nesterov,
                                   weight_decay=wd))
    np.testing.assert_allclose(got, reference_sgd(0.1, momentum, nesterov, wd), rtol=1e-13)


def test_sgd_momentum_first_steps_by_hand():
    model = tiny_model()
    opt = distbp.SGD(model, lr=1.0, momentum=0.5)
    model.flat_grads[...] = [1.0, 0.0, 0.0]
    opt.step()  # buf = g = 1 -> p = 1 - 1 = 0
    opt.step()  # buf = 0.5 * 1 + 1 = 1.5 -> p = 0 - 1.5
    assert model.flat_params[0] == -1.5


@pytest.mark.parametrize("cls,wd", [(distbp.Adam, 0.0), (distbp.Adam, 0.1),
                                    (distbp.AdamW, 0.01), (distbp.AdamW, 0.3)])
def test_adam_family(cls, wd):
    got = run(lambda m: cls(m, lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=wd))
    expected = reference_adam(0.01, 0.8, 0.99, 1e-6, wd, cls is distbp.AdamW)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_adam_first_step_moves_by_lr():
    # after one step m_hat = g, v_hat = g^2, so each parameter moves by lr * sign(g)
    model = tiny_model()
    model.flat_grads[...] = [0.1, -3.0, 1e-3]
    distbp.Adam(model, lr=0.01, eps=0.0).step()
    np.testing.assert_allclose(model.flat_params, [0.99, -1.99, 0.49], rtol=1e-12)


@pytest.mark.parametrize("factory,message", [
    (lambda m: distbp.SGD(m, lr=-0.1), "SGD: lr must be a finite number >= 0, got -0.1"),
    (lambda m: distbp.SGD(m, lr=0.1, momentum=-1), "SGD: momentum must be"),
    (lambda m: distbp.SGD(m, lr=0.1, nesterov=True), "nesterov needs momentum > 0"),
    (lambda m: distbp.Adam(m, lr=math.nan), "Adam: lr must be a finite number"),
    (lambda m: distbp.AdamW(m, betas=(0.9, 1.0)), r"AdamW: betas must be two numbers in \[0, 1\)"),
])
def test_bad_hyperparameters(factory, message):
    with pytest.raises(ValueError, match=message):
        factory(tiny_model())


@pytest.mark.parametrize("factory", [
    lambda m: distbp.SGD(m, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda m: distbp.Adam(m, lr=0.01, weight_decay=0.01),
    lambda m: distbp.AdamW(m, lr=0.01),
], ids=["sgd", "adam", "adamw"])
def test_an_update_in_chunks_equals_one_whole_update(factory):
    rng = np.random.default_rng(3)
    chunked, whole = (distbp.Sequential([distbp.Dense(600, 500)], seed=1) for _ in range(2))
    assert chunked.num_parameters > CHUNK  # two chunks, the second a short one
    chunked_optimizer, whole_optimizer = factory(chunked), factory(whole)
    for _ in range(3):
        grad = rng.standard_normal(chunked.num_parameters).astype(np.float32)
        chunked.flat_grads[...] = grad
        chunked_optimizer.step()
        scratches = (np.empty_like(grad), np.empty_like(grad))
        whole_optimizer.update(whole.flat_params, grad, scratches, whole_optimizer.buffers)
        whole_optimizer.steps += 1
    np.testing.assert_array_equal(chunked.flat_params, whole.flat_params)
    assert not np.array_equal(chunked.flat_params, distbp.Sequential(
        [distbp.Dense(600, 500)], seed=1).flat_params)
