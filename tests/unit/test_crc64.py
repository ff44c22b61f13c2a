"""CRC-64 as OSS computes it, and the combine used to check parts read in parallel."""

from __future__ import annotations

import os
import random

from oss2.utils import Crc64

from iproduction.crc64 import combine, combine_all, crc64


def oss2_crc(data: bytes) -> int:
    crc = Crc64()
    crc.update(data)
    return crc.crc


def test_check_value_and_oss2_agreement() -> None:
    assert crc64(b"123456789") == 0x995DC9BBDF1939FA  # CRC-64/XZ check value
    data = os.urandom(100_000)
    assert crc64(data) == oss2_crc(data)
    assert crc64(data[50:], crc64(data[:50])) == crc64(data)


def test_combine_matches_the_whole() -> None:
    rng = random.Random(7)
    data = rng.randbytes(300_001)
    for _ in range(20):
        cut = rng.randrange(0, len(data) + 1)
        a, b = data[:cut], data[cut:]
        assert combine(crc64(a), crc64(b), len(b)) == crc64(data)
    parts = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    assert combine_all([(crc64(p), len(p)) for p in parts]) == crc64(data)
    assert combine_all([]) == 0 == crc64(b"")
