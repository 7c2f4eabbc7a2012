"""Identifiers: time-ordered UUIDs (RFC 9562 version 7) for rows written in bulk.

A version-7 UUID starts with the Unix time in milliseconds, so rows inserted together land next to each other in
a primary-key or unique index (a random version-4 key touches a random leaf page per row: more pages dirtied,
more full-page images in the WAL). The remaining 74 bits are random. Python 3.11's ``uuid`` has no ``uuid7``.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0b10 << 62
_RANDOM_B = (1 << 62) - 1


_BLOCK = 4096  # random bytes read from the OS at a time (one ``getrandom`` call per ~400 identifiers, not per one)
_random = b""
_used = _BLOCK


def _forget_random() -> None:
    """A forked child must not reuse its parent's unread random bytes (the two would make the same ids)."""
    global _random, _used
    _random, _used = b"", _BLOCK


os.register_at_fork(after_in_child=_forget_random)


def _random_int() -> int:
    """80 random bits from the OS's CSPRNG."""
    global _random, _used
    if _used + 10 > len(_random):
        _random, _used = os.urandom(_BLOCK), 0
    start = _used
    _used += 10
    return int.from_bytes(_random[start:_used], "big")


def _uuid7_int() -> int:
    ms = time.time_ns() // 1_000_000
    rand = _random_int()
    rand_a = rand >> 68  # 12 bits
    rand_b = rand & _RANDOM_B  # 62 bits
    return (ms & 0xFFFF_FFFF_FFFF) << 80 | _VERSION_7 | rand_a << 64 | _VARIANT_RFC | rand_b


def uuid7() -> uuid.UUID:
    """A new version-7 UUID (millisecond timestamp, then random bits)."""
    return uuid.UUID(int=_uuid7_int())


def uuid7_str() -> str:
    """``str(uuid7())`` without the ``UUID`` object (for rows written as text in bulk)."""
    h = f"{_uuid7_int():032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
