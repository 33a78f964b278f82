"""distbp: synchronous data-parallel backprop in numpy, averaged over MPI with mpi4py.

`import distbp` never imports mpi4py; the communication module does, when asked.
"""

from distbp.errors import CollectiveError, ConfigError
from distbp.gradcheck import gradcheck
from distbp.layers import Dense, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.losses import MSE, Loss, SoftmaxCrossEntropy
from distbp.model import Parameter, Sequential
from distbp.optim import SGD, Adam, AdamW, Optimizer
from distbp.schedules import Constant, Cosine, Schedule, StepDecay, Warmup

__version__ = "0.1.0"

__all__ = [
    "MSE", "SGD", "Adam", "AdamW", "CollectiveError", "ConfigError", "Constant",
    "Cosine", "Dense", "Layer", "LeakyReLU", "Loss", "Optimizer", "Parameter", "ReLU",
    "Schedule", "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "StepDecay", "Tanh",
    "Warmup", "gradcheck",
]
