"""Gradient compression for the wire (distbp.dist.compress): the codecs round within their
stated error (bf16 as ml_dtypes rounds it, bit for bit), fp16's scale never lets a sum
overflow, and the compressed sum over ranks (the MPI suite) is the true sum to two
roundings, the same bits on every rank."""

import numpy as np
import pytest

from distbp.dist.comm import SerialComm
from distbp.dist.compress import FP16_MAX, CompressedSum, decode, encode, fp16_scale

ERROR = {"bf16": 2.0 ** -8, "fp16": 2.0 ** -11}  # relative error of one rounding


def round_trip(codec: str, values: np.ndarray) -> np.ndarray:
    codes, out = np.empty(len(values), np.uint16), np.empty(len(values), np.float32)
    encode(codec, values, codes)
    decode(codec, codes, out)
    return out


@pytest.mark.parametrize("codec", ["bf16", "fp16"])
def test_one_rounding_is_within_its_error(codec):
    rng = np.random.default_rng(0)
    values = rng.standard_normal(10_000).astype(np.float32) * 100
    values = values[np.abs(values) > 1e-2]  # fp16's normal range
    got = round_trip(codec, values)
    assert np.max(np.abs(got - values) / np.abs(values)) <= ERROR[codec]
    assert np.array_equal(round_trip(codec, got), got)  # already representable: unchanged


def test_bf16_rounds_to_nearest_even_as_ml_dtypes_does():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(1)
    values = np.concatenate([rng.standard_normal(5000) * 10.0 ** rng.integers(-30, 30, 5000),
                             [0.0, -0.0, 1.0, 3.4e38, -3.4e38, 1e-40]]).astype(np.float32)
    ties = (np.arange(1, 200, dtype=np.uint32) << 16 | 0x8000).view(np.float32)  # halfway
    for sample in (values, ties):
        expected = sample.astype(ml_dtypes.bfloat16).astype(np.float32)
        assert np.array_equal(round_trip("bf16", sample), expected)


def test_the_fp16_scale_keeps_every_sum_in_range():
    for bound in (1e-9, 3e-4, 0.7, 1.0, 65504.0, 1e7):
        scale = fp16_scale(bound)
        assert np.log2(scale) == int(np.log2(scale))  # a power of two: scaling is exact
        assert FP16_MAX / 2.1 <= bound * scale < FP16_MAX
    assert fp16_scale(0.0) == 1.0


@pytest.mark.parametrize("codec", ["bf16", "fp16"])
def test_one_rank_sums_to_one_rounding(codec):
    values = np.random.default_rng(2).standard_normal(1001).astype(np.float32)
    summed = values.copy()
    compressor = CompressedSum(codec, len(values), SerialComm())
    compressor.sum(summed, fp16_scale(np.abs(values).max()) if codec == "fp16" else 1.0)
    assert np.max(np.abs(summed - values) / np.abs(values)) <= ERROR[codec]
    assert compressor.wire_bytes == 0  # nothing left this rank


@pytest.mark.mpi
@pytest.mark.parametrize("codec", ["bf16", "fp16"])
@pytest.mark.parametrize("length", [1, 7, 1000])
def test_the_compressed_sum_over_ranks(comm, codec, length):
    everyone = [np.random.default_rng(rank).standard_normal(length).astype(np.float32)
                for rank in range(comm.size)]
    mine = everyone[comm.rank].copy()
    bound = sum(float(np.abs(v).max()) for v in everyone)
    compressor = CompressedSum(codec, length, comm)
    compressor.sum(mine, fp16_scale(bound) if codec == "fp16" else 1.0)
    exact = np.sum(everyone, axis=0, dtype=np.float64)
    # each term rounded once, the sum once more: relative to the sum of magnitudes
    magnitude = np.sum(np.abs(everyone), axis=0, dtype=np.float64)
    assert np.all(np.abs(mine - exact) <= 2.01 * ERROR[codec] * magnitude)
    assert all(np.array_equal(mine, other) for other in comm.allgather(mine))
    block = -(-length // comm.size)
    assert compressor.wire_bytes == 4 * block * (comm.size - 1)
