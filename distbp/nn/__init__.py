"""The network side: layers as forward/backward kernels, losses, Sequential over one flat
parameter buffer, initialisation, gradient checks and the --model spec. Knows no MPI."""

from distbp.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from distbp.nn.conv import Conv2D
from distbp.nn.dense import Dense
from distbp.nn.dropout import Dropout
from distbp.nn.gradcheck import gradcheck
from distbp.nn.layer import Layer, StepContext
from distbp.nn.losses import MSE, Loss, SoftmaxCrossEntropy
from distbp.nn.normalization import BatchNorm
from distbp.nn.pool import GlobalAvgPool2D, MaxPool2D
from distbp.nn.recurrent import LSTM, RNN
from distbp.nn.sequential import Parameter, Sequential
from distbp.nn.shape import Flatten, Reshape

__all__ = [
    "BatchNorm", "Conv2D", "Dense", "Dropout", "Flatten", "GlobalAvgPool2D", "LSTM", "Layer",
    "LeakyReLU", "Loss", "MSE", "MaxPool2D", "Parameter", "RNN", "ReLU", "Reshape",
    "Sequential", "Sigmoid", "SoftmaxCrossEntropy", "StepContext", "Tanh", "gradcheck",
]
