"""The OSS emulator's CRC-64 arithmetic and contents, checked against oss2's own Crc64."""

from __future__ import annotations

import gc
import os
import random

import oss2
import pytest
from oss2.utils import Crc64

from localcloud.oss import crc as crcmath
from localcloud.oss.content import (
    BLOCK,
    BytesContent,
    CompositeContent,
    ContentWriter,
    SyntheticContent,
    slice_content,
)


def oss2_crc(data: bytes) -> int:
    digest = Crc64()
    digest.update(data)
    return digest.crc


def test_crc64_and_combine_match_oss2() -> None:
    rng = random.Random(5)
    for _ in range(20):
        a, b = rng.randbytes(rng.randrange(0, 5000)), rng.randbytes(rng.randrange(0, 5000))
        assert crcmath.crc64(a) == oss2_crc(a)
        assert crcmath.combine(oss2_crc(a), oss2_crc(b), len(b)) == oss2_crc(a + b)
        assert crcmath.combine(oss2_crc(a), oss2_crc(b), len(b)) == Crc64().combine(oss2_crc(a), oss2_crc(b), len(b))
    assert oss2.utils.calc_obj_crc_from_parts([oss2.models.PartInfo(1, "x", size=3, part_crc=oss2_crc(b"abc"))]) \
        == crcmath.crc64(b"abc")


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, BLOCK - 1, BLOCK, BLOCK + 1, 3 * BLOCK + 12345])
def test_synthetic_crc_of_small_sizes(size: int) -> None:
    content = SyntheticContent(size, seed=size)
    data = content.read()
    assert len(data) == size
    assert content.crc == oss2_crc(data)


def test_synthetic_crc_of_odd_ranges() -> None:
    content = SyntheticContent(6 * BLOCK + 777, seed="odd")
    data = content.read()
    rng = random.Random(11)
    spans = [(0, 8), (3, 5), (BLOCK - 3, 10), (BLOCK, BLOCK), (2 * BLOCK, 3 * BLOCK), (7, 4 * BLOCK + 3)]
    spans += [(start, rng.randrange(content.size - start + 1))
              for start in (rng.randrange(content.size) for _ in range(40))]
    for start, length in spans:
        assert content.range_crc(start, length) == oss2_crc(data[start:start + length]), (start, length)
        assert content.read(start, length) == data[start:start + length]


def test_synthetic_blocks_differ_and_are_stable() -> None:
    content = SyntheticContent(3 * BLOCK, seed=1)
    first, second = content.read(0, BLOCK), content.read(BLOCK, BLOCK)
    assert first[8:] == second[8:] and first[:8] != second[:8]
    assert SyntheticContent(3 * BLOCK, seed=1).read(5, 100) == content.read(5, 100)
    assert SyntheticContent(3 * BLOCK, seed=2).read(5, 100) != content.read(5, 100)


def test_composite_reorders_and_merges() -> None:
    source = SyntheticContent(4 * BLOCK + 10, seed=3)
    data = source.read()
    swapped = CompositeContent([(source, BLOCK, BLOCK), (source, 0, BLOCK), (BytesContent(b"tail"), 0, 4)])
    expected = data[BLOCK:2 * BLOCK] + data[:BLOCK] + b"tail"
    assert swapped.read() == expected
    assert swapped.crc == oss2_crc(expected)
    assert swapped.range_crc(BLOCK - 5, 20) == oss2_crc(expected[BLOCK - 5:BLOCK + 15])
    in_order = CompositeContent([(slice_content(source, 0, 100), 0, 100), (source, 100, source.size - 100)])
    assert len(in_order.segments) == 1 and in_order.crc == source.crc
    nested = CompositeContent([(swapped, 5, 2 * BLOCK)])
    assert nested.read() == expected[5:5 + 2 * BLOCK]
    assert all(not isinstance(segment[0], CompositeContent) for segment in nested.segments)


def test_huge_synthetic_crc_is_fast_and_consistent() -> None:
    content = SyntheticContent(50 << 30, seed=9)
    whole = content.crc
    cut = 17 * BLOCK + 12345
    head, tail = content.range_crc(0, cut), content.range_crc(cut, content.size - cut)
    assert crcmath.combine(head, tail, content.size - cut) == whole


def test_writer_spills_to_disk_and_cleans_up(tmp_path: os.PathLike[str]) -> None:
    writer = ContentWriter(lambda: str(tmp_path), threshold=1000)
    payload = os.urandom(5000)
    for offset in range(0, len(payload), 700):
        writer.write(payload[offset:offset + 700])
    content = writer.finish()
    assert content.read() == payload and content.crc == oss2_crc(payload)
    assert content.range_crc(999, 2001) == oss2_crc(payload[999:3000])
    assert len(os.listdir(tmp_path)) == 1
    del content
    gc.collect()
    assert os.listdir(tmp_path) == []
