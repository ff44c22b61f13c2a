"""CRC-64/ECMA as OSS computes it (``x-oss-hash-crc64ecma``), plus fast combination.

The checksum is the one ``oss2.utils.Crc64`` computes (CRC-64/XZ: reflected ECMA-182 polynomial,
init and xorout all ones). Combining uses CRC linearity: ``crc(A+B) = Z^len(B)(crc(A)) ^ crc(B)``
where ``Z`` is the GF(2)-linear "append one zero byte" operator on the register. Operators are
64x64 bit matrices kept as byte-lookup tables, so applying one costs eight lookups; the powers
``Z^(2^i)`` and operators for repeated lengths are cached (``oss2.crc64_combine`` rebuilds its
matrices on every call, which is far too slow for thousands of blocks).
"""

from __future__ import annotations

import functools
import threading

import crcmod

MASK = (1 << 64) - 1
_POLY_REFLECTED = 0xC96C5795D7870F42  # 0x42F0E1EBA9EA3693 bit-reversed

crc64 = crcmod.mkCrcFun(0x142F0E1EBA9EA3693, initCrc=0, rev=True, xorOut=MASK)
"""``crc64(data, crc=0)``: CRC of ``data``, continuing from the CRC of what came before."""


class Gf2Op:
    """A linear map on 64-bit vectors over GF(2), applied through eight 256-entry tables."""

    __slots__ = ("cols", "tables")

    def __init__(self, cols: list[int]) -> None:
        self.cols = cols
        tables = []
        for byte in range(8):
            base = cols[byte * 8:byte * 8 + 8]
            table = [0] * 256
            for value in range(1, 256):
                low = value & -value
                table[value] = table[value ^ low] ^ base[low.bit_length() - 1]
            tables.append(table)
        self.tables = tables

    def __call__(self, x: int) -> int:
        t = self.tables
        return (t[0][x & 255] ^ t[1][(x >> 8) & 255] ^ t[2][(x >> 16) & 255] ^ t[3][(x >> 24) & 255]
                ^ t[4][(x >> 32) & 255] ^ t[5][(x >> 40) & 255] ^ t[6][(x >> 48) & 255] ^ t[7][x >> 56])

    def after(self, other: Gf2Op) -> Gf2Op:
        """The composition ``self(other(x))``."""
        return Gf2Op([self(col) for col in other.cols])

    def plus(self, other: Gf2Op) -> Gf2Op:
        """The sum ``self(x) ^ other(x)``."""
        return Gf2Op([a ^ b for a, b in zip(self.cols, other.cols, strict=False)])

    @classmethod
    def identity(cls) -> Gf2Op:
        return cls([1 << i for i in range(64)])


def _zero_byte_op() -> Gf2Op:
    def step(reg: int) -> int:
        for _ in range(8):
            reg = (reg >> 1) ^ (_POLY_REFLECTED if reg & 1 else 0)
        return reg

    return Gf2Op([step(1 << i) for i in range(64)])


_lock = threading.Lock()
_pow2: list[Gf2Op] = [_zero_byte_op()]  # _pow2[i] = Z^(2^i)


def _power_of_two(i: int) -> Gf2Op:
    with _lock:
        while len(_pow2) <= i:
            _pow2.append(_pow2[-1].after(_pow2[-1]))
        return _pow2[i]


def shift(crc: int, length: int) -> int:
    """Apply ``Z^length``: what ``length`` zero bytes do to a register value."""
    i = 0
    while length:
        if length & 1:
            crc = _power_of_two(i)(crc)
        length >>= 1
        i += 1
    return crc


@functools.lru_cache(maxsize=512)
def zeros_op(length: int) -> Gf2Op:
    """The cached operator ``Z^length`` (for lengths that recur, e.g. block and part sizes)."""
    op = Gf2Op.identity()
    i = 0
    while length:
        if length & 1:
            op = _power_of_two(i).after(op)
        length >>= 1
        i += 1
    return op


def combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of ``A + B`` from ``crc(A)``, ``crc(B)`` and ``len(B)``."""
    if len2 == 0:
        return crc1
    return shift(crc1, len2) ^ crc2


def combine_cached(crc1: int, crc2: int, len2: int) -> int:
    """Like :func:`combine` with the operator for ``len2`` cached (use for recurring lengths)."""
    if len2 == 0:
        return crc1
    return zeros_op(len2)(crc1) ^ crc2


def linear_crc(data: bytes) -> int:
    """The purely linear part of the CRC (register starting at zero, no final xor)."""
    return crc64(data) ^ crc64(bytes(len(data)))
