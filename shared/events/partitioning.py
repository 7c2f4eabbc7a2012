"""Kafka's default key partitioning (murmur2 of the key, as the Java client and aiokafka's ``DefaultPartitioner``
compute it), for the outbox relay, which assigns partitions itself when it builds record batches.

aiokafka's ``murmur2`` is pure Python with a mask after every operation; this one reads the key as 32-bit
little-endian words in one ``struct`` call and masks only where a value can exceed 32 bits. Same results
(tested against aiokafka's on random keys of every length remainder)."""

from __future__ import annotations

import struct
from collections.abc import Sequence

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """MurmurHash2 of ``data`` (unsigned 32-bit)."""
    length = len(data)
    h = _SEED ^ length
    words = length >> 2
    for k in struct.unpack_from(f"<{words}I", data):
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length & 3
    if tail:
        base = words << 2
        if tail >= 3:
            h ^= data[base + 2] << 16
        if tail >= 2:
            h ^= data[base + 1] << 8
        h = ((h ^ data[base]) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    return h ^ (h >> 15)


def partition_of(key: bytes, partitions: Sequence[int]) -> int:
    """The partition the default partitioner gives ``key`` among ``partitions`` (sorted)."""
    return partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
