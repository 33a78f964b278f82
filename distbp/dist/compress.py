"""Gradients compressed for the wire between nodes (--grad-compression bf16|fp16).

The compressed sum is a reduce-scatter and an allgather of 16-bit values whose partial
sums stay float32: node j receives every node's 16-bit block j (Alltoall), decodes and
adds them in float32 in node order, encodes its summed block once more and every node
gathers the sums (Allgather). 2 bytes per value cross the wire each way instead of 4;
each value is rounded twice (before the sum and after it); every node gets the same bits.

bf16 keeps float32's range (8 exponent bits, 8 significant bits; rounded to nearest
even). fp16 has 11 significant bits but overflows past 65504: the caller scales by a
power of two chosen from the sum over nodes of each node's largest magnitude, so no sum
can overflow, and tiny values lose bits first. NaN and infinity never reach the codecs:
the non-finite flag, summed over nodes first, skips the step (distbp.dist.hierarchical).
"""

from __future__ import annotations

import math

import numpy as np

from distbp.dist.comm import SerialComm

CODECS = ("bf16", "fp16")
FP16_MAX = 65504.0
Array = np.ndarray


def encode(codec: str, values: Array, out: Array, work: Array | None = None) -> None:
    """float32 values (n,) -> 16-bit codes in out (n,) uint16; work: (n,) uint32 scratch."""
    if codec == "fp16":
        np.copyto(out.view(np.float16), values, casting="same_kind")
        return
    bits = values.view(np.uint32)  # bf16: the top half, rounded to nearest even
    work = np.empty(len(values), np.uint32) if work is None else work
    np.right_shift(bits, np.uint32(16), out=work)
    np.bitwise_and(work, np.uint32(1), out=work)  # the kept half's last bit: ties to even
    work += bits
    work += np.uint32(0x7FFF)
    np.copyto(out, work.view(np.uint16)[1::2])  # little-endian: the high half


def decode(codec: str, codes: Array, out: Array) -> None:
    """16-bit codes (n,) uint16 -> float32 values in out (n,)."""
    if codec == "fp16":
        np.copyto(out, codes.view(np.float16))
    else:
        np.left_shift(codes, np.uint32(16), out=out.view(np.uint32), dtype=np.uint32)


def fp16_scale(bound: float) -> float:
    """The power of two that keeps a sum bounded by `bound` below fp16's largest value."""
    if not bound > 0:
        return 1.0
    return 2.0 ** math.floor(math.log2(FP16_MAX / 1.01 / bound))


class CompressedSum:
    """The sum over `comm`'s ranks of a float vector of `length`, through 16-bit codes;
    buffers made once."""

    def __init__(self, codec: str, length: int, comm: SerialComm) -> None:
        assert codec in CODECS, codec
        self.codec, self.length, self.comm = codec, length, comm
        self.block = -(-length // comm.size)  # each rank sums one block
        size = self.block * comm.size
        self.send, self.recv = np.zeros(size, np.uint16), np.zeros(size, np.uint16)
        self.gathered, self.mine = np.zeros(size, np.uint16), np.zeros(self.block, np.uint16)
        self.values = np.zeros(length, np.float32)  # the vector, scaled, in float32
        self.total, self.term = np.zeros(self.block, np.float32), np.zeros(self.block, np.float32)
        self.work = np.zeros(length, np.uint32)  # bf16's rounding scratch
        self.wire_bytes = 0  # sent by this rank, all steps

    def sum(self, vector: Array, scale: float = 1.0) -> None:
        """vector (length,) <- the sum over ranks of everyone's vector, in place."""
        block, length, codec = self.block, self.length, self.codec
        values = self.values  # float32 and scaled (the vector itself when it already is)
        if scale != 1.0 or vector.dtype != np.float32:
            np.multiply(vector, scale, out=values, casting="same_kind")
        else:
            values = vector
        encode(codec, values, self.send[:length], self.work)  # the padding stays zero
        self.comm.Alltoall(self.send, self.recv)  # block j of every rank to rank j
        self.total[...] = 0
        for sender in range(self.comm.size):  # in rank order: the same bits everywhere
            decode(codec, self.recv[sender * block:(sender + 1) * block], self.term)
            self.total += self.term
        encode(codec, self.total, self.mine, self.work[:block])
        self.comm.Allgather(self.mine, self.gathered)
        decode(codec, self.gathered[:length], values)
        if values is not vector:
            np.multiply(values, 1.0 / scale, out=vector, casting="same_kind")
        self.wire_bytes += 2 * 2 * block * (self.comm.size - 1)  # out: Alltoall, Allgather
