"""distbp: synchronous data-parallel backprop in numpy, averaged over MPI with mpi4py.

`import distbp` never imports mpi4py; the communication module does, when asked.
"""

from distbp.conv import Conv2D, Flatten, GlobalAvgPool2D, MaxPool2D, Reshape
from distbp.errors import CollectiveError, ConfigError
from distbp.gradcheck import gradcheck
from distbp.layers import Dense, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.losses import MSE, Loss, SoftmaxCrossEntropy
from distbp.model import Parameter, Sequential
from distbp.optim import SGD, Adam, AdamW, Optimizer
from distbp.regularize import BatchNorm, Dropout
from distbp.schedules import Constant, Cosine, Schedule, StepDecay, Warmup

__version__ = "0.1.0"

__all__ = [
    "MSE", "SGD", "Adam", "AdamW", "BatchNorm", "CollectiveError", "ConfigError", "Constant",
    "Conv2D", "Cosine", "Dense", "Dropout", "Flatten", "GlobalAvgPool2D", "Layer",
    "LeakyReLU", "Loss", "MaxPool2D", "Optimizer", "Parameter", "ReLU", "Reshape",
    "Schedule", "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "StepDecay", "Tanh",
    "Warmup", "gradcheck",
]
