"""The data side: the global batch sequence and each rank's shard of it, datasets by name
(the embedded synthetic set, the MNIST family in IDX files, user .npz files)."""

from distbp.data.dataset import Dataset
from distbp.data.loaders import load
from distbp.data.sampler import GlobalBatchSampler, shard_range
from distbp.data.synthetic import synthetic

__all__ = ["Dataset", "GlobalBatchSampler", "load", "shard_range", "synthetic"]
