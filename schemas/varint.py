"""Avro's zig-zag varints (spec, "Binary Encoding" → ``int``/``long``, lengths and block
counts: https://avro.apache.org/docs/1.11.1/specification/#binary-encoding), written and read
for the codec's fast paths (:mod:`schemas.fastcodec`), and :class:`Fallback`, what a fast path
raises when it declines an input.

Reading is as strict as the fast paths need: at most ten bytes and 64 bits, else
:class:`Fallback` (fastavro then decides).
"""

from __future__ import annotations

__all__ = ["CHUNK", "Fallback", "Lengths", "read_long", "read_z", "varint", "varint32",
           "varlen", "zigzag_varint"]


class Fallback(Exception):
    """The fast path declines this input; run fastavro instead."""


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
CHUNK = 1 << 14
"""Tables hold varints of 14-bit chunks (two 7-bit groups): 16,384 entries each."""


def zigzag_varint(z: int) -> bytes:
    """The varint bytes of an unsigned (already zig-zagged) ``z`` (spec, "Binary Encoding")."""
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def varint(n: int) -> bytes:
    """Zig-zag varint of a 64-bit ``n`` (Avro spec, "Primitive Types" → ``long``).

    Raises :class:`Fallback` when ``n`` is not an ``int`` (``bool`` included) or does not fit
    64 bits.
    """
    if n.__class__ is not int or not _LONG_MIN <= n <= _LONG_MAX:
        raise Fallback
    return zigzag_varint((n << 1) ^ (n >> 63))


def varint32(n: int) -> bytes:
    """:func:`varint` of an Avro ``int``: raises :class:`Fallback` outside 32 bits."""
    if not _INT_MIN <= n <= _INT_MAX:
        raise Fallback
    return varint(n)


def varlen(n: int) -> bytes:
    """Varint of a length or block count ``n >= 0`` (zig-zag of ``n`` is ``2n``)."""
    return zigzag_varint(n << 1)


_from_bytes = int.from_bytes


def read_z(data: bytes, pos: int) -> tuple[int, int]:
    """The unsigned (still zig-zagged) varint at ``pos``: ``(z, next position)``.

    Reads at most 10 bytes (a 64-bit varint: the tenth 0 or 1), else raises
    :class:`Fallback`; ``IndexError`` when the bytes end first. Six bytes (a timestamp in
    milliseconds: 2**35 <= z < 2**42) are read as one 48-bit integer whose 7-bit groups are
    joined by masks and shifts; other sizes byte by byte, unrolled (a loop cost twice as much).
    """
    if pos + 6 <= len(data):
        w = _from_bytes(data[pos:pos + 6], "little")
        if w & 0x808080808080 == 0x008080808080:
            w = (w & 0x007F007F007F) | ((w >> 1) & 0x3F803F803F80)  # 14 bits a 16-bit lane
            return (w & 0x3FFF) | ((w >> 2) & 0xFFFC000) | ((w >> 4) & 0x3FFF0000000), pos + 6
    b = data[pos]
    z = b & 0x7F
    if b < 0x80:
        return z, pos + 1
    b = data[pos + 1]
    z |= (b & 0x7F) << 7
    if b < 0x80:
        return z, pos + 2
    b = data[pos + 2]
    z |= (b & 0x7F) << 14
    if b < 0x80:
        return z, pos + 3
    b = data[pos + 3]
    z |= (b & 0x7F) << 21
    if b < 0x80:
        return z, pos + 4
    b = data[pos + 4]
    z |= (b & 0x7F) << 28
    if b < 0x80:
        return z, pos + 5
    b = data[pos + 5]
    z |= (b & 0x7F) << 35
    if b < 0x80:
        return z, pos + 6
    b = data[pos + 6]
    z |= (b & 0x7F) << 42
    if b < 0x80:
        return z, pos + 7
    b = data[pos + 7]
    z |= (b & 0x7F) << 49
    if b < 0x80:
        return z, pos + 8
    b = data[pos + 8]
    z |= (b & 0x7F) << 56
    if b < 0x80:
        return z, pos + 9
    b = data[pos + 9]
    if b <= 1:  # the tenth byte holds bit 63 only: more would not fit 64 bits
        return z | (b << 63), pos + 10
    raise Fallback


def read_long(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a zig-zag varint at ``pos``: ``(value, next position)``; at most 10 bytes."""
    z, pos = read_z(data, pos)
    return (z >> 1) ^ -(z & 1), pos


class Lengths(dict[int, bytes]):
    """``lengths[n]``: the varint of a length or count ``n >= 0``; a table below 2**13, the
    general :func:`varlen` above (not stored: the table stays bounded)."""

    def __missing__(self, n: int) -> bytes:
        return varlen(n)
