"""Learning-rate schedules (distbp.optim.schedules)."""

import math

import pytest

import distbp


def test_schedules():
    assert distbp.Constant(0.1)(1000) == 0.1
    step = distbp.StepDecay(1.0, step_size=10, gamma=0.5)
    assert [step(0), step(9), step(10), step(25)] == [1.0, 1.0, 0.5, 0.25]
    cosine = distbp.Cosine(1.0, total_steps=100, min_lr=0.1)
    assert cosine(0) == 1.0 and cosine(100) == pytest.approx(0.1) and cosine(500) == cosine(100)
    assert cosine(50) == pytest.approx(0.55)
    warm = distbp.Warmup(distbp.Cosine(1.0, total_steps=100), warmup_steps=4)
    assert [warm(i) for i in range(3)] == pytest.approx([0.25 * cosine_at(i) for i in (0,)]
                                                        + [0.5 * cosine_at(1), 0.75 * cosine_at(2)])
    assert warm(10) == distbp.Cosine(1.0, total_steps=100)(10)
    with pytest.raises(ValueError, match="Cosine: total_steps must be > 0"):
        distbp.Cosine(1.0, total_steps=0)


def cosine_at(step):
    return 0.5 * (1 + math.cos(math.pi * step / 100))
