"""distbp: synchronous data-parallel backprop in numpy, averaged over MPI with mpi4py.

Packages by layer, imports flowing one way: nn (layers, losses, Sequential) -> optim ->
data -> dist (communication, the data-parallel step, reductions) -> cli (the job).
`import distbp` never imports mpi4py; the communication module does, when asked.
"""

from distbp.cli.modelfile import load_model
from distbp.data import GlobalBatchSampler
from distbp.dist import DataParallel, evaluate, make_trainer, world
from distbp.errors import CollectiveError, ConfigError
from distbp.nn import (
    LSTM,
    MSE,
    RNN,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    LeakyReLU,
    Loss,
    MaxPool2D,
    Parameter,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    gradcheck,
)
from distbp.optim import (
    SGD,
    Adam,
    AdamW,
    Constant,
    Cosine,
    Optimizer,
    Schedule,
    StepDecay,
    Warmup,
    clip_grad_norm,
)

__version__ = "0.1.0"

__all__ = [
    "Adam", "AdamW", "BatchNorm", "CollectiveError", "ConfigError", "Constant", "Conv2D",
    "Cosine", "DataParallel", "Dense", "Dropout", "Flatten", "GlobalAvgPool2D",
    "GlobalBatchSampler", "LSTM", "Layer", "LeakyReLU", "Loss", "MSE", "MaxPool2D",
    "Optimizer", "Parameter", "RNN", "ReLU", "Reshape", "SGD", "Schedule", "Sequential",
    "Sigmoid", "SoftmaxCrossEntropy", "StepDecay", "Tanh", "Warmup", "clip_grad_norm",
    "evaluate", "gradcheck", "load_model",
    "make_trainer", "world",
]
