"""CRC-64/ECMA-182 as OSS computes it (``x-oss-hash-crc64ecma``): ``crc64`` is crcmod's C implementation;
:func:`combine` gives the CRC of ``A + B`` from those of ``A`` and ``B`` (zlib's method, with the zero-byte
operators cached per length), so parts copied in parallel can be checked against the whole object."""

from __future__ import annotations

from functools import cache, lru_cache, reduce

import crcmod

POLY = 0x142F0E1EBA9EA3693
_REFLECTED = 0xC96C5795D7870F42  # POLY without its top bit, bit-reversed
_DIM = 64

crc64 = crcmod.mkCrcFun(POLY, initCrc=0, rev=True, xorOut=0xFFFFFFFFFFFFFFFF)
"""``crc64(data, crc=0)``: the CRC of ``data``, continuing from ``crc``."""

Matrix = tuple[int, ...]


def _times(matrix: Matrix, vector: int) -> int:
    total = 0
    index = 0
    while vector:
        if vector & 1:
            total ^= matrix[index]
        vector >>= 1
        index += 1
    return total


def _product(a: Matrix, b: Matrix) -> Matrix:
    """The operator ``a ∘ b`` (apply ``b``, then ``a``)."""
    return tuple(_times(a, column) for column in b)


@cache
def _power(k: int) -> Matrix:
    """The operator for 2**k zero *bits*."""
    if k == 0:
        return (_REFLECTED, *(1 << n for n in range(_DIM - 1)))
    last = _power(k - 1)
    return _product(last, last)


@lru_cache(maxsize=128)
def _operator(length: int) -> Matrix:
    """The operator for ``length`` zero bytes."""
    bits = length * 8
    powers = [_power(k) for k in range(bits.bit_length()) if bits >> k & 1]
    return reduce(lambda result, power: _product(power, result), powers)


def combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC of ``A + B`` from ``crc1 = crc64(A)``, ``crc2 = crc64(B)`` and ``len2 = len(B)``."""
    if len2 <= 0:
        return crc1
    return _times(_operator(len2), crc1) ^ crc2


def combine_all(parts: list[tuple[int, int]]) -> int:
    """CRC of the concatenation of parts given as ``(crc, length)`` in order."""
    return reduce(lambda total, part: combine(total, *part), parts, 0)
