"""Optimizers (SGD, Adam, AdamW) over the flat buffers, and learning-rate schedules."""

from distbp.optim.optimizers import SGD, Adam, AdamW, Optimizer
from distbp.optim.schedules import Constant, Cosine, Schedule, StepDecay, Warmup

__all__ = ["SGD", "Adam", "AdamW", "Constant", "Cosine", "Optimizer", "Schedule", "StepDecay",
           "Warmup"]
