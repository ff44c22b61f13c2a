"""Immutable object contents: in-memory bytes, files on disk, synthetic bytes, and composites.

Keys and multipart parts reference contents; copies share them, so a 50 GiB server-side copy costs
neither memory nor byte generation. Every content can stream any byte range and give the CRC-64 of
any range; synthetic and composite contents compute CRCs arithmetically (see :mod:`.crc`).

Synthetic bytes: block ``i`` (of :data:`BLOCK` bytes) is a random base block drawn from the seed
with ``i`` stamped big-endian into its first 8 bytes, so blocks differ and misordered parts show.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import IO

from . import crc as crcmath

BLOCK = 1 << 20
STAMP = 8
CHUNK = 1 << 20


class Content:
    """Base class: ``size`` bytes, readable by range, with cached CRC-64."""

    size: int
    ident: str  # stable identity, used for pseudo ETags

    def __init__(self) -> None:
        self._crc: int | None = None
        self._crc_lock = threading.Lock()

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        raise NotImplementedError

    def range_crc(self, start: int, length: int) -> int:
        raise NotImplementedError

    def range_md5(self, start: int, length: int) -> str | None:
        """Upper-case hex MD5 of a range when it is cheap to compute, else None."""
        return None

    @property
    def crc(self) -> int:
        with self._crc_lock:
            if self._crc is None:
                self._crc = self.range_crc(0, self.size)
            return self._crc

    def read(self, start: int = 0, length: int | None = None) -> bytes:
        return b"".join(self.chunks(start, length))

    def _bounds(self, start: int, length: int | None) -> tuple[int, int]:
        if length is None:
            length = self.size - start
        if start < 0 or length < 0 or start + length > self.size:
            raise ValueError(f"range {start}+{length} outside content of {self.size} bytes")
        return start, length


class BytesContent(Content):
    """Small contents kept in memory."""

    def __init__(self, data: bytes, crc: int | None = None) -> None:
        super().__init__()
        self.data = bytes(data)
        self.size = len(self.data)
        self.md5 = hashlib.md5(self.data).hexdigest().upper()
        self.ident = self.md5
        self._crc = crc

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        start, length = self._bounds(start, length)
        view = memoryview(self.data)
        for offset in range(start, start + length, CHUNK):
            yield bytes(view[offset:min(offset + CHUNK, start + length)])

    def range_crc(self, start: int, length: int) -> int:
        return crcmath.crc64(self.data[start:start + length])

    def range_md5(self, start: int, length: int) -> str | None:
        return hashlib.md5(self.data[start:start + length]).hexdigest().upper()


class FileContent(Content):
    """A body spilled to disk; the file is removed once no key or part references it."""

    def __init__(self, path: str, size: int, md5: str, crc: int) -> None:
        super().__init__()
        self.path, self.size, self.md5, self.ident = path, size, md5, md5
        self._crc = crc
        weakref.finalize(self, _unlink, path)

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        start, length = self._bounds(start, length)
        with open(self.path, "rb") as handle:
            handle.seek(start)
            while length:
                data = handle.read(min(CHUNK, length))
                if not data:
                    raise OSError(f"{self.path} is shorter than expected")
                length -= len(data)
                yield data

    def range_crc(self, start: int, length: int) -> int:
        value = 0
        for data in self.chunks(start, length):
            value = crcmath.crc64(data, value)
        return value

    def range_md5(self, start: int, length: int) -> str | None:
        if length > 64 << 20:
            return None
        digest = hashlib.md5()
        for data in self.chunks(start, length):
            digest.update(data)
        return digest.hexdigest().upper()


def _unlink(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


class SyntheticContent(Content):
    """``size`` pseudo-random bytes from ``seed``, generated on read, never stored."""

    def __init__(self, size: int, seed: int | str = 0) -> None:
        super().__init__()
        if size < 0:
            raise ValueError("synthetic size must be >= 0")
        self.size, self.seed = int(size), str(seed)
        self.ident = f"synthetic:{self.size}:{self.seed}"

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        start, length = self._bounds(start, length)
        base = base_block(self.seed)
        end = start + length
        while start < end:
            index, offset = divmod(start, BLOCK)
            stop = min(BLOCK, offset + end - start)
            yield _block_piece(base, index, offset, stop)
            start += stop - offset

    def range_crc(self, start: int, length: int) -> int:
        start, length = self._bounds(start, length)
        return synthetic_range_crc(self.seed, start, length)


class CompositeContent(Content):
    """Ranges of other contents, end to end (multipart results and copied ranges).

    Segments always point at leaf contents; adjacent ranges of one leaf are merged, so parts
    copied in order from one source collapse back into a single range of it.
    """

    def __init__(self, segments: list[tuple[Content, int, int]]) -> None:
        super().__init__()
        flat: list[tuple[Content, int, int]] = []
        for content, start, length in segments:
            for leaf in _leaves(content, start, length):
                if leaf[2] == 0:
                    continue
                if flat and flat[-1][0] is leaf[0] and flat[-1][1] + flat[-1][2] == leaf[1]:
                    flat[-1] = (leaf[0], flat[-1][1], flat[-1][2] + leaf[2])
                else:
                    flat.append(leaf)
        self.segments = flat
        self.size = sum(length for _, _, length in flat)
        joined = ";".join(f"{c.ident}@{s}+{n}" for c, s, n in flat)
        self.ident = hashlib.md5(joined.encode()).hexdigest().upper()

    def _overlapping(self, start: int, length: int) -> Iterator[tuple[Content, int, int]]:
        position, end = 0, start + length
        for content, seg_start, seg_length in self.segments:
            seg_end = position + seg_length
            if seg_end > start and position < end:
                lo, hi = max(start, position), min(end, seg_end)
                yield content, seg_start + lo - position, hi - lo
            if seg_end >= end:
                break
            position = seg_end

    def chunks(self, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        start, length = self._bounds(start, length)
        for content, seg_start, seg_length in self._overlapping(start, length):
            yield from content.chunks(seg_start, seg_length)

    def range_crc(self, start: int, length: int) -> int:
        start, length = self._bounds(start, length)
        value = 0
        for content, seg_start, seg_length in self._overlapping(start, length):
            if seg_start == 0 and seg_length == content.size:
                part = content.crc
            else:
                part = content.range_crc(seg_start, seg_length)
            value = crcmath.combine(value, part, seg_length)
        return value

    def range_md5(self, start: int, length: int) -> str | None:
        pieces = list(self._overlapping(start, length))
        if len(pieces) == 1:
            return pieces[0][0].range_md5(pieces[0][1], pieces[0][2])
        return None


def _leaves(content: Content, start: int, length: int) -> list[tuple[Content, int, int]]:
    if isinstance(content, CompositeContent):
        return list(content._overlapping(start, length))
    return [(content, start, length)]


def slice_content(content: Content, start: int, length: int) -> Content:
    """A view of ``length`` bytes of ``content`` from ``start`` (the content itself if whole)."""
    if start == 0 and length == content.size:
        return content
    return CompositeContent([(content, start, length)])


def flip_byte(content: Content, offset: int) -> Content:
    """``content`` with the byte at ``offset`` inverted (what the ``corrupt`` fault of a copy stores)."""
    damaged = BytesContent(bytes([content.read(offset, 1)[0] ^ 0xFF]))
    return CompositeContent([(content, 0, offset), (damaged, 0, 1),
                             (content, offset + 1, content.size - offset - 1)])


def content_md5(content: Content) -> str:
    """Upper-case hex MD5 of a whole content; a stable pseudo-MD5 of its identity above 64 MiB."""
    md5 = content.range_md5(0, content.size)
    if md5 is not None:
        return md5
    if content.size > 64 << 20:
        return hashlib.md5(content.ident.encode()).hexdigest().upper()
    digest = hashlib.md5()
    for data in content.chunks():
        digest.update(data)
    return digest.hexdigest().upper()


# -- synthetic bytes and their CRC ------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def base_block(seed: str) -> bytes:
    """The random block a synthetic content repeats (stable across runs and Python versions)."""
    return random.Random(f"localcloud-oss:{seed}").randbytes(BLOCK)


def _stamp(index: int) -> bytes:
    return index.to_bytes(STAMP, "big")


def _block_piece(base: bytes, index: int, offset: int, stop: int) -> bytes:
    if offset >= STAMP:
        return base[offset:stop]
    return _stamp(index)[offset:min(stop, STAMP)] + base[STAMP:stop]


class _RunMath:
    """Seed-independent operators for CRCs of runs of whole synthetic blocks.

    Blocks differ only in their stamp, and the stamp is linear in the block index, so for a run of
    ``2^k`` blocks starting at a multiple ``j`` of ``2^k``: ``crc = R_k(seed) ^ P_k(V(j))`` with
    ``V`` the stamp's contribution to one block and ``P_k = sum(Z^(BLOCK*t) for t < 2^k)``.
    """

    def __init__(self) -> None:
        tail = crcmath.zeros_op(BLOCK - STAMP)
        self.stamp_op = crcmath.Gf2Op([tail(crcmath.linear_crc(_stamp(1 << i))) for i in range(64)])
        self.sums = [crcmath.Gf2Op.identity()]
        self.lock = threading.Lock()

    def sum_op(self, k: int) -> crcmath.Gf2Op:
        with self.lock:
            while len(self.sums) <= k:
                j = len(self.sums) - 1
                prev = self.sums[j]
                self.sums.append(prev.plus(prev.after(crcmath.zeros_op(BLOCK << j))))
            return self.sums[k]


@functools.lru_cache(maxsize=1)
def _run_math() -> _RunMath:
    return _RunMath()


class _SeedRuns:
    """Per-seed ``R_k``: CRC of the first ``2^k`` whole blocks."""

    def __init__(self, seed: str) -> None:
        self.runs = [crcmath.crc64(_stamp(0) + base_block(seed)[STAMP:])]
        self.lock = threading.Lock()

    def run(self, k: int) -> int:
        math = _run_math()
        with self.lock:
            while len(self.runs) <= k:
                j = len(self.runs) - 1
                prev = self.runs[j]
                second = prev ^ math.sum_op(j)(math.stamp_op(1 << j))
                self.runs.append(crcmath.combine(prev, second, BLOCK << j))
            return self.runs[k]


@functools.lru_cache(maxsize=64)
def _seed_runs(seed: str) -> _SeedRuns:
    return _SeedRuns(seed)


def _whole_blocks_crc(seed: str, first: int, count: int) -> int:
    math, runs = _run_math(), _seed_runs(seed)
    value = 0
    while count:
        k = (first & -first).bit_length() - 1 if first else 63
        while (1 << k) > count:
            k -= 1
        run = runs.run(k) ^ math.sum_op(k)(math.stamp_op(first))
        value = crcmath.combine(value, run, BLOCK << k)
        first += 1 << k
        count -= 1 << k
    return value


@functools.lru_cache(maxsize=4096)
def synthetic_range_crc(seed: str, start: int, length: int) -> int:
    """CRC-64 of synthetic bytes ``[start, start+length)`` of ``seed``, without generating them."""
    if length == 0:
        return 0
    base = base_block(seed)
    end = start + length
    first, offset = divmod(start, BLOCK)
    last, last_offset = divmod(end, BLOCK)
    if first == last:
        return crcmath.crc64(_block_piece(base, first, offset, last_offset))
    value = 0
    if offset:
        value = crcmath.crc64(_block_piece(base, first, offset, BLOCK))
        first += 1
    if last > first:
        value = crcmath.combine(value, _whole_blocks_crc(seed, first, last - first), (last - first) * BLOCK)
    if last_offset:
        value = crcmath.combine(value, crcmath.crc64(_block_piece(base, last, 0, last_offset)), last_offset)
    return value


# -- writing bodies ----------------------------------------------------------------------------------

class ContentWriter:
    """Collects a streamed body in memory, spilling to a file past ``threshold`` bytes."""

    def __init__(self, directory: Callable[[], str], threshold: int) -> None:
        self._directory = directory
        self._threshold = threshold
        self._buffer = bytearray()
        self._file: IO[bytes] | None = None
        self._md5 = hashlib.md5()
        self._crc = 0
        self.size = 0

    def write(self, data: bytes) -> None:
        self._md5.update(data)
        self._crc = crcmath.crc64(data, self._crc)
        self.size += len(data)
        if self._file is None:
            self._buffer += data
            if len(self._buffer) > self._threshold:
                self._file = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in finish()/abort()
                    dir=self._directory(), prefix="obj-", delete=False)
                self._file.write(self._buffer)
                self._buffer = bytearray()
        else:
            self._file.write(data)

    @property
    def md5(self) -> str:
        return self._md5.hexdigest().upper()

    def finish(self) -> Content:
        if self._file is None:
            return BytesContent(bytes(self._buffer), crc=self._crc)
        self._file.close()
        return FileContent(self._file.name, self.size, self.md5, self._crc)

    def abort(self) -> None:
        if self._file is not None:
            self._file.close()
            _unlink(self._file.name)
