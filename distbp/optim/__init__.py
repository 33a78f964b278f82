"""Optimizers (SGD, Adam, AdamW) over the flat buffers, and learning-rate schedules."""

from distbp.optim.clip import clip_grad_norm
from distbp.optim.optimizers import SGD, Adam, AdamW, Optimizer
from distbp.optim.schedules import Constant, Cosine, Schedule, StepDecay, Warmup

__all__ = ["SGD", "Adam", "AdamW", "Constant", "Cosine", "Optimizer", "Schedule", "StepDecay",
           "Warmup", "clip_grad_norm"]
