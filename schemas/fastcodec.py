"""Avro binary encoders and decoders generated per schema (Python source compiled once), or
the compiled module's (:mod:`schemas._avrovm`, Cython) when it is built.

The compiled module (issue #22, session 20) keeps this module's contract to the letter — the
same checks, the same declines — with the walk in C: the largest record type's encode + decode
went from ~40 µs to ~10 µs (``lvlup bench codec``). ``compile_encoder``/``compile_decoder``
return its functions when ``setup.py`` built it (``make setup`` does), else the generated
Python described below, which stays the reference and the portable path.

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
bits, a negative block count, a bad or non-minimally encoded branch index) raises
:class:`Fallback` or a ``TypeError``/``ValueError``/``KeyError``/``IndexError``/
``struct.error``/``UnicodeDecodeError``, and :class:`schemas.codec.Codec` then runs fastavro
on the same input: its result or its error is the answer. So the fast path changes speed,
never bytes, values or errors (tests/schemas/test_fastcodec.py checks it against fastavro).

How the generated code is fast (profiled with py-spy and timeit, issue #22): every value is
written inline, without a helper call, for the common sizes — varints below 2**14 and
timestamps below 2**42 (zig-zagged) come from tables of 14-bit chunks (:func:`_runtime`),
string lengths below 8192 from one table look-up; consecutive ``double`` fields are packed
or unpacked by one :class:`struct.Struct`; a decoded record is built by one dict display
from local variables. Anything longer goes through the general helpers.

Supported: the primitive types but ``float``, ``bytes`` and ``fixed`` (none of our schemas
use them), records, arrays, maps, enums and two-branch unions with ``null``; a schema using
anything else gets no fast path (``None``). The source is generated from our packaged
schemas only; names appear in it as ``repr`` literals, never as code.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable
from typing import Any

from schemas.varint import CHUNK as _CHUNK
from schemas.varint import Fallback
from schemas.varint import Lengths as _Lengths
from schemas.varint import read_z as _read_z
from schemas.varint import varint as _varint
from schemas.varint import varint32 as _varint32
from schemas.varint import varlen as _varlen
from schemas.varint import zigzag_varint as _zigzag_varint

__all__ = [
    "Decoder", "Encoder", "Fallback", "compile_decoder", "compile_encoder", "compiled_module",
]

Encoder = Callable[[Any, bytes], bytes]
"""``encoder(record, header)`` → ``header`` + the record's Avro body."""
Decoder = Callable[[bytes, int], tuple[dict[str, Any], int]]
"""``decoder(data, start)`` → ``(record, position after it)``."""


class _Unsupported(Exception):
    """The schema uses a type this module does not generate code for."""


_PRIMITIVES = ("null", "boolean", "int", "long", "double", "string")
@functools.cache
def _runtime() -> dict[str, Any]:
    """The names every generated function sees: helpers and look-up tables (built once).

    ``_V14[z]``: varint of ``z < 2**14``; ``_C14[c]``: the two bytes of a 14-bit chunk ``c``
    with both continuation bits set (a chunk that more bytes follow); ``_SLEN[n]``: the
    length prefix of ``n`` bytes (a :class:`_Lengths`); ``_BOOL[b]`` the boolean of byte
    ``b`` (``IndexError`` above 1); by the first byte ``b`` of a varint: ``_LONG1[b]`` its
    value when it is the only byte (else ``None``), ``_STR1[b]`` the bytes a string takes
    with its one-byte length prefix (else -1: longer prefix or negative length). About
    1.3 MB, built in a few milliseconds.
    """
    v14 = tuple(_zigzag_varint(z) for z in range(_CHUNK))
    c14 = tuple(bytes(((c & 0x7F) | 0x80, (c >> 7) | 0x80)) for c in range(_CHUNK))
    return {"Fallback": Fallback, "_varint": _varint, "_varint32": _varint32,
            "_varlen": _varlen, "_read_z": _read_z, "_V14": v14, "_C14": c14,
            "_SLEN": _Lengths(enumerate(v14[0::2])), "_BOOL": (False, True),
            "_LONG1": tuple((z >> 1) ^ -(z & 1) if z < 0x80 else None for z in range(256)),
            "_STR1": tuple(1 + (z >> 1) if z < 0x80 and not z & 1 else -1 for z in range(256))}


@functools.cache
def _doubles(count: int) -> struct.Struct:
    """The :class:`struct.Struct` of ``count`` little-endian IEEE doubles."""
    return struct.Struct("<" + "d" * count)


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


def _enc_varint(g: _Gen, v: str, d: int, *, long: bool) -> None:
    """Lines appending the zig-zag varint of ``int`` variable ``v`` to the parts list ``p``.

    ``z < 2**14`` (``z < 2**42``) implies ``|v| < 2**13`` (``2**41``) for every Python int,
    so the range checks of an Avro ``int``/``long`` are only needed on the helper's path.
    """
    g.emit(d, f"if {v}.__class__ is not int: raise Fallback")
    g.emit(d, f"z = ({v} << 1) ^ ({v} >> 63)")
    if not long:
        g.emit(d, f"p.append(_V14[z] if z < 0x4000 else _varint32({v}))")
        return
    g.emit(d, "if z < 0x4000: p.append(_V14[z])")
    g.emit(d, "elif z < 0x10000000:")
    g.emit(d + 1, "p.append(_C14[z & 0x3FFF])")
    g.emit(d + 1, "p.append(_V14[z >> 14])")
    g.emit(d, "elif z < 0x40000000000:")
    g.emit(d + 1, "p.append(_C14[z & 0x3FFF])")
    g.emit(d + 1, "p.append(_C14[(z >> 14) & 0x3FFF])")
    g.emit(d + 1, "p.append(_V14[z >> 28])")
    g.emit(d, f"else: p.append(_varint({v}))")


def _enc(g: _Gen, schema: Any, v: str, d: int) -> None:
    """Lines appending the encoding of variable ``v`` (of ``schema``) to the parts list ``p``."""
    kind = _kind(schema)
    if kind == "null":
        g.emit(d, f"if {v} is not None: raise Fallback")
    elif kind == "boolean":
        g.emit(d, f"if {v} is True: p.append(b'\\x01')")
        g.emit(d, f"elif {v} is False: p.append(b'\\x00')")
        g.emit(d, "else: raise Fallback")
    elif kind in ("int", "long"):
        _enc_varint(g, v, d, long=kind == "long")
    elif kind == "double":
        _enc_doubles(g, [v], d)
    elif kind == "string":
        b = g.name("b")
        g.emit(d, f"if {v}.__class__ is not str: raise Fallback")
        g.emit(d, f"{b} = {v}.encode()")
        g.emit(d, f"p.append(_SLEN[len({b})])")
        g.emit(d, f"p.append({b})")
    elif kind == "enum":
        index = {s: _varint(i) for i, s in enumerate(schema["symbols"])}
        g.emit(d, f"p.append({g.const(index)}[{v}])")
    elif kind == "nullable":
        branches = schema if isinstance(schema, list) else schema["type"]
        null_at = branches.index("null")
        other = branches[1 - null_at]
        g.emit(d, f"if {v} is None: p.append({_varint(null_at)!r})")
        g.emit(d, "else:")
        g.emit(d + 1, f"p.append({_varint(1 - null_at)!r})")
        _enc(g, other, v, d + 1)
    elif kind in ("array", "map"):
        cls = "list" if kind == "array" else "dict"
        g.emit(d, f"if {v}.__class__ is not {cls}: raise Fallback")
        g.emit(d, f"if {v}:")
        g.emit(d + 1, f"p.append(_SLEN[len({v})])")
        if kind == "array":
            x = g.name("x")
            g.emit(d + 1, f"for {x} in {v}:")
            _enc(g, schema["items"], x, d + 2)
        else:
            k, x = g.name("k"), g.name("x")
            g.emit(d + 1, f"for {k}, {x} in {v}.items():")
            _enc(g, "string", k, d + 2)
            _enc(g, schema["values"], x, d + 2)
        g.emit(d, "p.append(b'\\x00')")
    elif kind == "record":
        g.emit(d, f"if {v}.__class__ is not dict: raise Fallback")
        _enc_fields(g, schema, v, d, stamp=None)


def _enc_doubles(g: _Gen, names: list[str], d: int) -> None:
    """Lines appending consecutive ``double`` variables ``names`` with one struct call."""
    for v in names:
        g.emit(d, f"if {v}.__class__ is not float and {v}.__class__ is not int: raise Fallback")
    g.emit(d, f"p.append({g.const(_doubles(len(names)).pack)}({', '.join(names)}))")


def _field_value(g: _Gen, field: dict[str, Any], r: str, d: int) -> str:
    """A line binding field ``field`` of record variable ``r`` (or its default); the name."""
    fv = g.name("v")
    name = field["name"]
    if "default" in field:
        g.emit(d, f"{fv} = {r}.get({name!r}, {g.const(field['default'])})")
    else:
        g.emit(d, f"{fv} = {r}[{name!r}]")
    return fv


def _enc_fields(g: _Gen, schema: dict[str, Any], r: str, d: int, stamp: int | None) -> None:
    fields = schema["fields"]
    i = 0
    while i < len(fields):
        field = fields[i]
        if stamp is not None and field["name"] == "schema_version":
            g.emit(d, f"p.append({_varint(stamp)!r})")  # the version written (codec contract)
            i += 1
            continue
        if _kind(field["type"]) == "double":  # a run of doubles: one pack
            run = [field]
            while i + len(run) < len(fields) and _kind(fields[i + len(run)]["type"]) == "double":
                run.append(fields[i + len(run)])
            _enc_doubles(g, [_field_value(g, f, r, d) for f in run], d)
            i += len(run)
            continue
        _enc(g, field["type"], _field_value(g, field, r, d), d)
        i += 1


@functools.cache
def compiled_module() -> Any:
    """The compiled implementation, :mod:`schemas._avrovm` (Cython, built by ``setup.py`` as
    an optional extension), or ``None`` when it is not built; imported once."""
    try:
        from schemas import _avrovm  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    return _avrovm


def compile_encoder(
    schema: dict[str, Any], version: int, *, compiled: bool = True
) -> Encoder | None:
    """The encoder of record schema ``schema`` (fastavro-parsed, physical: no logical
    types); ``schema_version`` is written as ``version``. ``None`` when unsupported.

    ``compiled``: :mod:`schemas._avrovm`'s when it is built (the same contract, in C), else
    the generated Python; ``False``: the generated Python always.
    """
    vm = compiled_module() if compiled else None
    if vm is not None:
        encoder: Encoder | None = vm.compile_encoder(schema, version)
        return encoder
    g = _Gen()
    try:
        g.emit(1, "p = [header]")
        _enc_fields(g, schema, "r", 1, stamp=version)
    except _Unsupported:
        return None
    g.emit(1, "return b''.join(p)")
    return _build("def encode(r, header):", g, "encode")


def _dec_z(g: _Gen, d: int) -> None:
    """Lines reading an unsigned (still zig-zagged) varint of two or more bytes at ``pos``
    into ``z``; two bytes inline."""
    g.emit(d, "b = data[pos + 1]")
    g.emit(d, "if b < 0x80:")
    g.emit(d + 1, "z = (data[pos] & 0x7F) | (b << 7)")
    g.emit(d + 1, "pos += 2")
    g.emit(d, "else: z, pos = _read_z(data, pos)")


def _dec_count(g: _Gen, d: int) -> None:
    """Lines reading a block count (or any varint) at ``pos`` into unsigned ``z``."""
    g.emit(d, "z = data[pos]")
    g.emit(d, "if z < 0x80: pos += 1")
    g.emit(d, "else:")
    _dec_z(g, d + 1)


def _dec(g: _Gen, schema: Any, target: str, d: int) -> None:  # noqa: PLR0915 - one branch a type
    """Lines decoding a value of ``schema`` at ``pos`` into ``target``."""
    kind = _kind(schema)
    if kind == "null":
        g.emit(d, f"{target} = None")
    elif kind == "boolean":
        g.emit(d, f"{target} = _BOOL[data[pos]]")
        g.emit(d, "pos += 1")
    elif kind in ("int", "long"):
        g.emit(d, f"{target} = _LONG1[data[pos]]")
        g.emit(d, f"if {target} is None:")
        _dec_z(g, d + 1)
        g.emit(d + 1, f"{target} = (z >> 1) ^ -(z & 1)")
        g.emit(d, "else: pos += 1")
    elif kind == "double":
        _dec_doubles(g, [target], d)
    elif kind == "string":
        g.emit(d, "e = _STR1[data[pos]]")
        g.emit(d, "if e > 0:")
        g.emit(d + 1, "e += pos")
        g.emit(d + 1, f"{target} = data[pos + 1:e].decode()")
        g.emit(d, "else:")
        g.emit(d + 1, "if data[pos] < 0x80: raise Fallback")  # odd: a negative length
        _dec_z(g, d + 1)
        g.emit(d + 1, "if z & 1: raise Fallback")  # a negative length
        g.emit(d + 1, "e = pos + (z >> 1)")
        g.emit(d + 1, f"{target} = data[pos:e].decode()")
        g.emit(d, "pos = e")
    elif kind == "enum":
        symbols = tuple(schema["symbols"])
        by_byte = tuple(symbols[z >> 1] if not z & 1 and z >> 1 < len(symbols) and z < 0x80
                        else None for z in range(256))
        g.emit(d, f"{target} = {g.const(by_byte)}[data[pos]]")
        g.emit(d, f"if {target} is None:")
        g.emit(d + 1, "z, pos = _read_z(data, pos)")
        g.emit(d + 1, "if z & 1: raise Fallback")  # a negative index
        g.emit(d + 1, f"{target} = {g.const(symbols)}[z >> 1]")
        g.emit(d, "else: pos += 1")
    elif kind == "nullable":
        branches = schema if isinstance(schema, list) else schema["type"]
        null_at = branches.index("null")
        # the branch index as its one-byte varint: 0 → 0x00, 1 → 0x02 (else: declined)
        g.emit(d, "z = data[pos]")
        g.emit(d, "pos += 1")
        g.emit(d, f"if z == {2 * null_at}: {target} = None")
        g.emit(d, f"elif z == {2 * (1 - null_at)}:")
        _dec(g, branches[1 - null_at], target, d + 1)
        g.emit(d, "else: raise Fallback")
    elif kind in ("array", "map"):
        acc = g.name("a")
        g.emit(d, f"{acc} = {'[]' if kind == 'array' else '{}'}")
        g.emit(d, "while True:")
        _dec_count(g, d + 1)
        g.emit(d + 1, "if z == 0: break")
        g.emit(d + 1, "if z & 1: raise Fallback")  # sized blocks: fastavro reads them
        g.emit(d + 1, "for _ in range(z >> 1):")
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
        _dec_record(g, schema, target, d)


def _dec_doubles(g: _Gen, targets: list[str], d: int) -> None:
    """Lines unpacking consecutive ``double`` values into ``targets`` with one struct call."""
    unpack = g.const(_doubles(len(targets)).unpack_from)
    g.emit(d, f"{', '.join(targets)}, = {unpack}(data, pos)")
    g.emit(d, f"pos += {8 * len(targets)}")


def _dec_record(g: _Gen, schema: dict[str, Any], target: str, d: int) -> None:
    """Lines decoding the fields into locals, then ``target`` = one dict display of them."""
    fields = schema["fields"]
    names = [g.name("v") for _ in fields]
    i = 0
    while i < len(fields):
        j = i
        while j < len(fields) and _kind(fields[j]["type"]) == "double":
            j += 1
        if j > i:  # a run of doubles: one unpack
            _dec_doubles(g, names[i:j], d)
            i = j
            continue
        _dec(g, fields[i]["type"], names[i], d)
        i += 1
    items = ", ".join(f"{f['name']!r}: {v}" for f, v in zip(fields, names, strict=True))
    g.emit(d, f"{target} = {{{items}}}")


def compile_decoder(schema: dict[str, Any], *, compiled: bool = True) -> Decoder | None:
    """The decoder of record schema ``schema`` (fastavro-parsed, physical), returning the
    record as fastavro's ``schemaless_reader`` does; ``None`` when unsupported.
    ``compiled``: as for :func:`compile_encoder`."""
    vm = compiled_module() if compiled else None
    if vm is not None:
        decoder: Decoder | None = vm.compile_decoder(schema)
        return decoder
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
    namespace: dict[str, Any] = {**_runtime(), **g.consts}
    exec(compile(source, f"<avro {name}>", "exec"), namespace)  # noqa: S102 - own schemas only
    fn: Callable[..., Any] = namespace[name]
    return fn
