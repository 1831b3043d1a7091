"""Avro binary encoders and decoders generated per schema (Python source compiled once).

Why: fastavro's ``schemaless_writer`` / ``schemaless_reader`` interpret the schema dict on
every record — about 85 % of the codec's time went to that walk (type-name comparisons and
dict look-ups per field; docs/ARCHITECTURE.md, "Where the time goes"). A function written
for one schema does only the field's own work. The bytes are Avro's binary encoding (spec,
"Binary Encoding", https://avro.apache.org/docs/1.11.1/specification/#binary-encoding):
zig-zag varints for ``int``/``long`` and lengths, little-endian IEEE doubles, one byte per
boolean, the branch index before a union value, block-counted arrays and maps ending with 0.

These functions are a *fast path*, stricter than fastavro: whatever they are not sure to
encode or decode exactly as fastavro does (a value of another class than the schema's —
``bool`` for an ``int``, a ``Mapping`` that is not a ``dict`` —, an ``int`` outside 32
bits, a negative block count, a bad branch index) raises :class:`Fallback` or a
``TypeError``/``ValueError``/``KeyError``/``IndexError``/``struct.error``/
``UnicodeDecodeError``, and :class:`schemas.codec.Codec` then runs fastavro on the same
input: its result or its error is the answer. So the fast path changes speed, never bytes,
values or errors (tests/schemas/test_fastcodec.py checks it against fastavro).

Supported: the primitive types but ``float``, ``bytes`` and ``fixed`` (none of our schemas
use them), records, arrays, maps, enums and two-branch unions with ``null``; a schema using
anything else gets no fast path (``None``). The source is generated from our packaged
schemas only; names appear in it as ``repr`` literals, never as code.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

__all__ = ["Decoder", "Encoder", "Fallback", "compile_decoder", "compile_encoder"]

Encoder = Callable[[Any, bytes], bytes]
"""``encoder(record, header)`` → ``header`` + the record's Avro body."""
Decoder = Callable[[bytes, int], tuple[dict[str, Any], int]]
"""``decoder(data, start)`` → ``(record, position after it)``."""


class Fallback(Exception):
    """The fast path declines this input; run fastavro instead."""


class _Unsupported(Exception):
    """The schema uses a type this module does not generate code for."""


_PRIMITIVES = ("null", "boolean", "int", "long", "double", "string")
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _varint(n: int) -> bytes:
    """Zig-zag varint of a 64-bit ``n`` (Avro spec, "Primitive Types" → ``long``)."""
    if n.__class__ is not int or not _LONG_MIN <= n <= _LONG_MAX:
        raise Fallback
    z = (n << 1) ^ (n >> 63)
    if z < 0x80:
        return _SMALL[z]
    out = bytearray()
    while z >= 0x80:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


_SMALL = tuple(bytes((z,)) for z in range(0x80))
_LEN = _SMALL[0::2]
"""``_LEN[n]`` is the varint of a length ``0 <= n < 64`` (zig-zag of n is 2n)."""


def _read_long(data: bytes, pos: int) -> tuple[int, int]:
    """Decode a zig-zag varint at ``pos``: ``(value, next position)``; at most 10 bytes."""
    shift = 0
    z = 0
    for _ in range(10):
        b = data[pos]
        pos += 1
        z |= (b & 0x7F) << shift
        if b < 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
    raise Fallback


_PACK_D = struct.Struct("<d").pack
_UNPACK_D = struct.Struct("<d").unpack_from


def _kind(schema: Any) -> str:
    if isinstance(schema, str):
        if schema not in _PRIMITIVES:
            raise _Unsupported(schema)
        return schema
    if isinstance(schema, list):
        if len(schema) == 2 and "null" in schema and schema[0] != schema[1]:
            return "nullable"
        raise _Unsupported("union")
    if isinstance(schema, dict):
        t = schema.get("type")
        if t in ("record", "array", "map", "enum"):
            return str(t)
        return _kind(t)
    raise _Unsupported(repr(schema))


class _Gen:
    """Accumulates generated lines and the constants they refer to."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {}
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def const(self, value: Any) -> str:
        key = self.name("_c")
        self.consts[key] = value
        return key

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _enc(g: _Gen, schema: Any, v: str, d: int) -> None:  # noqa: PLR0915 - one branch a type
    """Lines appending the encoding of variable ``v`` (of ``schema``) to ``o``."""
    kind = _kind(schema)
    if kind == "null":
        g.emit(d, f"if {v} is not None: raise Fallback")
    elif kind == "boolean":
        g.emit(d, f"if {v} is True: o += b'\\x01'")
        g.emit(d, f"elif {v} is False: o += b'\\x00'")
        g.emit(d, "else: raise Fallback")
    elif kind == "int":
        g.emit(d, f"if {v}.__class__ is not int or not {_INT_MIN} <= {v} <= {_INT_MAX}: "
                  "raise Fallback")
        g.emit(d, f"o += _LEN[{v}] if 0 <= {v} < 64 else _varint({v})")
    elif kind == "long":
        g.emit(d, f"o += _varint({v})")
    elif kind == "double":
        g.emit(d, f"if {v}.__class__ is not float and {v}.__class__ is not int: raise Fallback")
        g.emit(d, f"o += _PACK_D({v})")
    elif kind == "string":
        b = g.name("b")
        g.emit(d, f"if {v}.__class__ is not str: raise Fallback")
        n = g.name("n")
        g.emit(d, f"{b} = {v}.encode()")
        g.emit(d, f"{n} = len({b})")
        g.emit(d, f"o += _LEN[{n}] if {n} < 64 else _varint({n})")
        g.emit(d, f"o += {b}")
    elif kind == "enum":
        index = {s: _varint(i) for i, s in enumerate(schema["symbols"])}
        g.emit(d, f"o += {g.const(index)}[{v}]")
    elif kind == "nullable":
        branches = schema if isinstance(schema, list) else schema["type"]
        null_at = branches.index("null")
        other = branches[1 - null_at]
        g.emit(d, f"if {v} is None: o += {_varint(null_at)!r}")
        g.emit(d, "else:")
        g.emit(d + 1, f"o += {_varint(1 - null_at)!r}")
        _enc(g, other, v, d + 1)
    elif kind == "array":
        x = g.name("x")
        g.emit(d, f"if {v}.__class__ is not list: raise Fallback")
        g.emit(d, f"if {v}:")
        g.emit(d + 1, f"o += _varint(len({v}))")
        g.emit(d + 1, f"for {x} in {v}:")
        _enc(g, schema["items"], x, d + 2)
        g.emit(d, "o += b'\\x00'")
    elif kind == "map":
        k, x = g.name("k"), g.name("x")
        g.emit(d, f"if {v}.__class__ is not dict: raise Fallback")
        g.emit(d, f"if {v}:")
        g.emit(d + 1, f"o += _varint(len({v}))")
        g.emit(d + 1, f"for {k}, {x} in {v}.items():")
        _enc(g, "string", k, d + 2)
        _enc(g, schema["values"], x, d + 2)
        g.emit(d, "o += b'\\x00'")
    elif kind == "record":
        g.emit(d, f"if {v}.__class__ is not dict: raise Fallback")
        _enc_fields(g, schema, v, d, stamp=None)


def _enc_fields(g: _Gen, schema: dict[str, Any], r: str, d: int, stamp: int | None) -> None:
    for field in schema["fields"]:
        name = field["name"]
        fv = g.name("v")
        if stamp is not None and name == "schema_version":
            g.emit(d, f"o += {_varint(stamp)!r}")  # the version written (codec contract)
            continue
        if "default" in field:
            g.emit(d, f"{fv} = {r}.get({name!r}, {g.const(field['default'])})")
        else:
            g.emit(d, f"{fv} = {r}[{name!r}]")
        _enc(g, field["type"], fv, d)


def compile_encoder(schema: dict[str, Any], version: int) -> Encoder | None:
    """The encoder of record schema ``schema`` (fastavro-parsed, physical: no logical
    types); ``schema_version`` is written as ``version``. ``None`` when unsupported."""
    g = _Gen()
    try:
        g.emit(1, "o = bytearray(header)")
        _enc_fields(g, schema, "r", 1, stamp=version)
    except _Unsupported:
        return None
    g.emit(1, "return bytes(o)")
    return _build("def encode(r, header):", g, "encode")


def _dec_long(g: _Gen, target: str, d: int) -> None:
    """Lines reading a zig-zag varint into ``target`` (fast path for one byte)."""
    g.emit(d, "z = data[pos]")
    g.emit(d, "if z < 0x80:")
    g.emit(d + 1, f"{target} = (z >> 1) ^ -(z & 1)")
    g.emit(d + 1, "pos += 1")
    g.emit(d, "else:")
    g.emit(d + 1, f"{target}, pos = _read_long(data, pos)")


def _dec(g: _Gen, schema: Any, target: str, d: int) -> None:  # noqa: PLR0915 - one branch a type
    """Lines decoding a value of ``schema`` at ``pos`` into ``target``."""
    kind = _kind(schema)
    if kind == "null":
        g.emit(d, f"{target} = None")
    elif kind == "boolean":
        g.emit(d, "z = data[pos]")
        g.emit(d, "pos += 1")
        g.emit(d, "if z > 1: raise Fallback")
        g.emit(d, f"{target} = z == 1")
    elif kind in ("int", "long"):
        _dec_long(g, target, d)
    elif kind == "double":
        g.emit(d, f"{target} = _UNPACK_D(data, pos)[0]")
        g.emit(d, "pos += 8")
    elif kind == "string":
        n = g.name("n")
        _dec_long(g, n, d)
        g.emit(d, f"if {n} < 0: raise Fallback")
        g.emit(d, f"{target} = data[pos:pos + {n}].decode()")
        g.emit(d, f"pos += {n}")
    elif kind == "enum":
        i = g.name("i")
        _dec_long(g, i, d)
        g.emit(d, f"if {i} < 0: raise Fallback")
        g.emit(d, f"{target} = {g.const(tuple(schema['symbols']))}[{i}]")
    elif kind == "nullable":
        branches = schema if isinstance(schema, list) else schema["type"]
        null_at = branches.index("null")
        i = g.name("i")
        _dec_long(g, i, d)
        g.emit(d, f"if {i} == {null_at}: {target} = None")
        g.emit(d, f"elif {i} == {1 - null_at}:")
        _dec(g, branches[1 - null_at], target, d + 1)
        g.emit(d, "else: raise Fallback")
    elif kind in ("array", "map"):
        n, acc = g.name("n"), g.name("a")
        g.emit(d, f"{acc} = {'[]' if kind == 'array' else '{}'}")
        g.emit(d, "while True:")
        _dec_long(g, n, d + 1)
        g.emit(d + 1, f"if {n} == 0: break")
        g.emit(d + 1, f"if {n} < 0: raise Fallback")  # sized blocks: fastavro reads them
        g.emit(d + 1, f"for _ in range({n}):")
        x = g.name("x")
        if kind == "array":
            _dec(g, schema["items"], x, d + 2)
            g.emit(d + 2, f"{acc}.append({x})")
        else:
            k = g.name("k")
            _dec(g, "string", k, d + 2)
            _dec(g, schema["values"], x, d + 2)
            g.emit(d + 2, f"{acc}[{k}] = {x}")
        g.emit(d, f"{target} = {acc}")
    elif kind == "record":
        rec = g.name("r")
        g.emit(d, f"{rec} = {{}}")
        for field in schema["fields"]:
            fv = g.name("v")
            _dec(g, field["type"], fv, d)
            g.emit(d, f"{rec}[{field['name']!r}] = {fv}")
        g.emit(d, f"{target} = {rec}")


def compile_decoder(schema: dict[str, Any]) -> Decoder | None:
    """The decoder of record schema ``schema`` (fastavro-parsed, physical), returning the
    record as fastavro's ``schemaless_reader`` does; ``None`` when unsupported."""
    g = _Gen()
    try:
        _dec(g, schema, "out", 1)
    except _Unsupported:
        return None
    g.emit(1, "if pos > len(data): raise Fallback")  # a slice ran past the end
    g.emit(1, "return out, pos")
    return _build("def decode(data, pos):", g, "decode")


def _build(head: str, g: _Gen, name: str) -> Callable[..., Any]:
    source = "\n".join([head, *g.lines])
    namespace: dict[str, Any] = {"Fallback": Fallback, "_varint": _varint, "_LEN": _LEN,
                                 "_read_long": _read_long, "_PACK_D": _PACK_D,
                                 "_UNPACK_D": _UNPACK_D, **g.consts}
    exec(compile(source, f"<avro {name}>", "exec"), namespace)  # noqa: S102 - own schemas only
    fn: Callable[..., Any] = namespace[name]
    return fn
