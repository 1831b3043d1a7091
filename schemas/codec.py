"""Encode records to, and decode them from, Avro single-object encoded bytes.

``Codec.encode`` writes a record with the newest version of its schema (or a chosen one);
``Codec.decode`` finds the writer's schema by the fingerprint in the message header and, when
asked, resolves the record to another version with Avro schema resolution (spec, "Schema
Resolution", https://avro.apache.org/docs/1.11.1/specification/#schema-resolution) through
fastavro's compiled ``schemaless_writer`` / ``schemaless_reader``. Schemas are parsed once, by
the registry; per call the codec only looks the schema up.

Values are Avro's *physical* values (see :mod:`schemas.logical`), which is what ``decode``
returns by default:

========================== ===================================== ===============================
Avro type                  ``decode`` returns                    ``encode`` also accepts
========================== ===================================== ===============================
string, logicalType uuid   ``str``                               ``uuid.UUID``
long, timestamp-millis     ``int`` epoch milliseconds (UTC)      aware ``datetime``
int, logicalType date      ``int`` days since 1970-01-01         ``datetime.date``
enum                       ``str`` symbol                        a ``StrEnum`` member
record / array / map       ``dict`` / ``list`` / ``dict``
========================== ===================================== ===============================

``decode(…, logical=True)`` returns ``UUID``, aware UTC ``datetime`` and ``date`` instead, at
a cost of about 1-2 µs per such field; ``record_model(t).model_validate(record)`` gives a typed
model. ``schema_version`` is stamped by ``encode`` with the version actually written, so a
decoded record always tells which schema its producer used.

Confluent framing (optional): a codec built with ``confluent=`` (a :class:`ConfluentFraming`,
in practice :class:`schemas.confluent.ConfluentResolver`) also decodes messages whose first
byte is ``00`` (magic byte, 4-byte schema id, body): the collaborator maps the id to the
writer's :class:`SchemaVersion`, the body is read exactly like a single-object one. Without
it, ``decode`` behaves as before (such bytes are a :class:`DecodeError`). ``encode`` always
writes single-object; :class:`schemas.confluent.ConfluentEncoder` writes the other framing.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Callable, Mapping
from io import BytesIO
from typing import Any, Literal, Protocol

from fastavro import schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError
from fastavro.validation import ValidationError, validate

from schemas.errors import DecodeError, EncodeError, SchemaError, UnknownSchema
from schemas.fastcodec import Decoder, Encoder, Fallback, compile_decoder, compile_encoder
from schemas.logical import converter
from schemas.registry import SchemaRegistry, SchemaVersion, load_registry
from schemas.wire import HEADER_SIZE, MARKER

__all__ = ["Codec", "ConfluentFraming", "ReaderVersion", "load_codec"]

ReaderVersion = int | Literal["latest"] | None
"""``None``: the writer's version; ``"latest"``: the newest version; ``int``: that version."""

# What fastavro raises on bad data. Listed, not ``Exception``, so a bug elsewhere still surfaces.
_WRITE_ERRORS = (TypeError, ValueError, AttributeError, KeyError, OverflowError, struct.error)
_READ_ERRORS = (
    SchemaResolutionError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    OverflowError,
    struct.error,
    UnicodeDecodeError,
)


# What the generated fast path raises when it declines an input (schemas.fastcodec): the
# fastavro path then gives the answer, bytes or error, so the fast path never decides one.
_FAST_DECLINES = (Fallback, TypeError, ValueError, AttributeError, KeyError, IndexError,
                  OverflowError, struct.error, UnicodeDecodeError)


class ConfluentFraming(Protocol):
    """Finds the writer schema of a Confluent-framed message (first byte ``00``)."""

    def writer_of(self, data: bytes | bytearray | memoryview) -> tuple[SchemaVersion, int]:
        """``(writer schema, offset where the Avro body starts)``; raises :class:`SchemaError`
        subclasses for bad or unknown ids (and its own error when the registry is down)."""
        ...


_CONFLUENT_MAGIC = b"\x00"


class Codec:
    """Single-object Avro encoder/decoder over a :class:`SchemaRegistry`.

    Thread-safe and stateless after construction. Build one per process with
    :func:`load_codec`, or pass your own registry (tests, tools). ``confluent`` makes
    :meth:`decode` accept Confluent-framed messages too (module docstring).
    """

    def __init__(
        self, registry: SchemaRegistry, *, confluent: ConfluentFraming | None = None
    ) -> None:
        self.registry = registry
        self.confluent = confluent
        self._latest: dict[str, SchemaVersion] = {
            rt: registry.latest(rt) for rt in registry.record_types
        }
        self._converters: dict[bytes, tuple[tuple[str, Callable[[Any], Any]], ...]] = {
            sv.fingerprint: tuple((name, converter(lt)) for name, lt in sv.logical_fields)
            for sv in registry
        }
        self._arrays: dict[bytes, tuple[str, ...]] = {
            sv.fingerprint: _array_fields(sv) for sv in registry
        }
        self._unions: dict[bytes, tuple[tuple[str, str, type[Any]], ...]] = {
            sv.fingerprint: _nullable_primitives(sv) for sv in registry
        }
        # generated per schema (schemas.fastcodec): the codec's hot path, fastavro behind it
        self._encoders: dict[bytes, Encoder | None] = {
            sv.fingerprint: compile_encoder(sv.physical, sv.version) for sv in registry
        }
        self._decoders: dict[bytes, Decoder | None] = {
            sv.fingerprint: compile_decoder(sv.physical) for sv in registry
        }
        # the hot calls in one dict look-up each: encode(type, record) with the newest
        # version; decode(bytes) by the whole 10-byte header (marker + fingerprint)
        self._fast_latest: dict[str, tuple[Encoder, bytes]] = {}
        for rt, sv in self._latest.items():
            encoder = self._encoders[sv.fingerprint]
            if encoder is not None:
                self._fast_latest[rt] = (encoder, sv.header)
        # (record type, decoder, whether the writer is its type's newest version: then
        # reader_version="latest" — every sink's call — reads it as written, fast too)
        self._fast_headers: dict[bytes, tuple[str, Decoder, bool]] = {}
        for sv in registry:
            writer = registry.find_fingerprint(sv.fingerprint)
            decoder = self._decoders[sv.fingerprint]
            if writer is not None and decoder is not None:
                is_latest = self._latest[writer.record_type] is writer
                self._fast_headers[writer.header] = (writer.record_type, decoder, is_latest)

    def encode(
        self, record_type: str, record: Mapping[str, Any], *, version: int | None = None
    ) -> bytes:
        """Encode ``record`` as ``record_type`` into single-object bytes (10-byte header + body).

        ``version`` picks the writer schema; ``None`` means the newest. ``schema_version`` in
        the output is the version written. Fields absent from ``record`` take their schema
        default; unknown keys are ignored. The caller's mapping is never modified. Raises
        :class:`UnknownSchema` for an unknown type or version and :class:`EncodeError` when a
        field is missing, its value does not fit its type, a top-level array is not a ``list``
        or a ``datetime`` is naive.

        Only what fastavro's writer checks is checked here (missing fields, wrong Python types
        for strings, numbers, enums, arrays and maps); ints outside the 32-bit range of an Avro
        ``int`` and strings that are not UUIDs in ``event_id`` are written as given. Untrusted
        input goes through :func:`schemas.validation.validate_json_record` or a model first.
        """
        tried = False
        if version is None and record.__class__ is dict:
            latest = self._fast_latest.get(record_type)
            if latest is not None:
                try:
                    return latest[0](record, latest[1])
                except _FAST_DECLINES:
                    tried = True  # declined: the checks and fastavro below give the answer
        sv = self._latest.get(record_type) if version is None else None
        if sv is None:
            sv = (
                self.registry.latest(record_type)
                if version is None
                else self.registry.get(record_type, version)
            )
        if record.__class__ is not dict and not isinstance(record, Mapping):
            raise EncodeError(
                f"{record_type}: record must be a mapping, got {type(record).__name__}"
            )
        for name in self._arrays[sv.fingerprint]:  # fastavro would turn "abc" into [a, b, c]
            value = record.get(name)
            if value is not None and value.__class__ is not list:
                raise EncodeError(f"{record_type}: field {name!r} must be a list")
        fast = None if tried else self._encoders[sv.fingerprint]
        if fast is not None and record.__class__ is dict:
            for name, _convert in self._converters[sv.fingerprint]:
                value = record.get(name)
                if not (value is None or value.__class__ is int or value.__class__ is str):
                    break  # a logical value to convert: the path below does it
            else:
                try:
                    return fast(record, sv.header)
                except _FAST_DECLINES:
                    fast = None  # declined: fastavro below writes it or raises the error
        return self._encode_reference(record_type, sv, record)

    def _encode_reference(
        self, record_type: str, sv: SchemaVersion, record: Mapping[str, Any]
    ) -> bytes:
        """:meth:`encode` through fastavro (logical conversions, fastavro's checks)."""
        changes: dict[str, Any] | None = None
        if record.get("schema_version") != sv.version:
            changes = {"schema_version": sv.version}
        for name, convert in self._converters[sv.fingerprint]:
            value = record.get(name)
            if value is None or value.__class__ is int or value.__class__ is str:
                continue
            try:
                physical = convert(value)
            except ValueError as exc:
                raise EncodeError(f"{record_type}: field {name!r}: {exc}") from exc
            changes = changes if changes is not None else {}
            changes[name] = physical
        # ["null", T] fields in fastavro's tuple notation, (T, value): the writer then picks
        # the branch by name instead of validating the value against each branch (~0.5 µs a
        # field). Only for values whose class is T's exactly (and an int in int's range), so
        # anything else still meets fastavro's checks and errors.
        for name, branch, cls in self._unions[sv.fingerprint]:
            current: Any = (
                changes[name] if changes is not None and name in changes else record.get(name)
            )
            if current.__class__ is cls and (branch != "int" or _INT_MIN <= current <= _INT_MAX):
                changes = changes if changes is not None else {}
                changes[name] = (branch, current)
        plain = record
        if changes:
            record = {**record, **changes}
        buf = BytesIO()
        buf.write(sv.header)
        try:
            schemaless_writer(buf, sv.physical, record)
        except _WRITE_ERRORS as exc:
            raise EncodeError(f"{record_type}: {_explain(sv, plain, exc)}") from exc
        return buf.getvalue()

    def decode(
        self,
        data: bytes | bytearray | memoryview,
        reader_version: ReaderVersion = None,
        *,
        logical: bool = False,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """Decode single-object (or, with ``confluent``, Confluent-framed) bytes.

        Returns ``(record_type, record)``. The first bytes choose the framing: ``C3 01`` →
        single-object, ``00`` → Confluent when this codec has a ``confluent`` collaborator.
        The writer schema is looked up by the fingerprint in the header (or by the schema id,
        through the collaborator, which may also raise its own registry error); the record is
        resolved to ``reader_version`` (see :data:`ReaderVersion`). ``logical=True`` converts
        logical types (module docstring). ``topic``, ``partition`` and ``offset`` only label errors.
        Raises :class:`UnknownSchema` when the fingerprint or the reader version is unknown,
        and :class:`DecodeError` when the bytes are not one complete record of the writer
        schema (no marker, truncated, corrupt, trailing bytes) or cannot be resolved to the
        reader version.
        """
        tried = False
        if not logical and data.__class__ is bytes:
            # the hot path: a known single-object header read by its generated decoder, when
            # the reader is the writer (no version asked, or "latest" and it is the newest)
            known = self._fast_headers.get(data[:HEADER_SIZE])
            if known is not None and (
                reader_version is None or (reader_version == "latest" and known[2])
            ):
                try:
                    fast_record, end = known[1](data, HEADER_SIZE)
                except _FAST_DECLINES:
                    end = -1  # declined: fastavro below reads it or raises the error
                if end == len(data):
                    return known[0], fast_record
                tried = True
        try:
            return self._decode(data, reader_version, logical, tried_fast=tried)
        except SchemaError as exc:
            exc.topic, exc.partition, exc.offset = topic, partition, offset
            raise

    def _decode(
        self,
        data: bytes | bytearray | memoryview,
        reader_version: ReaderVersion,
        logical: bool,
        *,
        tried_fast: bool = False,
    ) -> tuple[str, dict[str, Any]]:
        """:meth:`decode` without the Kafka context on errors (``tried_fast``: the generated
        decoder already declined these bytes)."""
        if len(data) >= HEADER_SIZE and data[:2] == MARKER:
            fp = data[2:HEADER_SIZE]
            if fp.__class__ is not bytes:
                fp = bytes(fp)
            writer = self.registry.find_fingerprint(fp)
            if writer is None:
                raise UnknownSchema(f"no schema with fingerprint {fp.hex()}")
            start = HEADER_SIZE
        elif self.confluent is not None and data[:1] == _CONFLUENT_MAGIC:
            writer, start = self.confluent.writer_of(data)
        else:
            raise DecodeError("not an Avro single-object message (c301 marker + fingerprint)")
        reader = writer if reader_version is None else self._reader(writer, reader_version)
        if reader is None:
            raise UnknownSchema(f"no reader schema {writer.record_type}.v{reader_version}")
        if reader is writer and not logical and not tried_fast:
            fast = self._decoders[writer.fingerprint]
            if fast is not None and data.__class__ is bytes:
                try:
                    fast_record, end = fast(data, start)
                except _FAST_DECLINES:
                    end = -1  # declined: fastavro below reads it or raises the error
                if end == len(data):
                    return writer.record_type, fast_record
        buf = BytesIO(data)
        buf.seek(start)
        w_schema = writer.parsed if logical else writer.physical
        r_schema = None if reader is writer else (reader.parsed if logical else reader.physical)
        try:
            record: dict[str, Any] = schemaless_reader(buf, w_schema, r_schema)  # type: ignore[assignment]
        except _READ_ERRORS as exc:
            raise DecodeError(
                f"cannot read {writer.record_type}.v{writer.version} as v{reader.version}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if buf.tell() != len(data):
            extra = len(data) - buf.tell()
            raise DecodeError(f"{extra} trailing bytes after a {writer.record_type} record")
        return writer.record_type, record

    def _reader(self, writer: SchemaVersion, reader_version: int | str) -> SchemaVersion | None:
        """The reader schema for ``reader_version``, or ``None`` if there is no such version."""
        if reader_version == "latest":
            return self._latest[writer.record_type]
        if not isinstance(reader_version, int):
            return None
        try:
            return self.registry.get(writer.record_type, reader_version)
        except SchemaError:
            return None


def _explain(sv: SchemaVersion, record: Mapping[str, Any], exc: BaseException) -> str:
    """One line saying which field is wrong; runs fastavro's (slow) validator on failure only.

    Falls back to the writer's own message when the validator finds nothing or fails itself.
    """
    missing = [name for name in sv.field_names if name not in record and not _has_default(sv, name)]
    if missing:
        return f"missing field {missing[0]!r}"
    fallback = f"{type(exc).__name__}: {exc}"
    try:
        validate(record, sv.physical, raise_errors=True)
    except ValidationError as verr:
        return f"invalid value: {verr.errors[0]}" if verr.errors else fallback
    except _WRITE_ERRORS:
        return fallback
    return fallback


def _array_fields(sv: SchemaVersion) -> tuple[str, ...]:
    """Names of the top-level fields of ``sv`` whose type is an array (nullable or not)."""
    names = []
    for field in sv.schema["fields"]:
        avro_type = field["type"]
        branches = avro_type if isinstance(avro_type, list) else [avro_type]
        if any(isinstance(b, dict) and b.get("type") == "array" for b in branches):
            names.append(str(field["name"]))
    return tuple(names)


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
"""The range of an Avro ``int`` (32-bit signed, spec "Primitive Types")."""
_PYTHON_CLASS = {"boolean": bool, "int": int, "long": int, "float": float, "double": float,
                 "bytes": bytes, "string": str}


def _nullable_primitives(sv: SchemaVersion) -> tuple[tuple[str, str, type[Any]], ...]:
    """``(field, branch, Python class)`` of the top-level ``["null", T]`` fields, T primitive.

    Read from the physical schema, where logical types are stripped (a nullable
    ``timestamp-millis`` is ``["null", "long"]`` there).
    """
    out = []
    for field in sv.physical["fields"]:
        avro_type = field["type"]
        if (isinstance(avro_type, list) and len(avro_type) == 2 and avro_type[0] == "null"
                and isinstance(avro_type[1], str) and avro_type[1] in _PYTHON_CLASS):
            out.append((str(field["name"]), avro_type[1], _PYTHON_CLASS[avro_type[1]]))
    return tuple(out)


def _has_default(sv: SchemaVersion, name: str) -> bool:
    """Whether top-level field ``name`` of ``sv`` declares a default."""
    return any(f["name"] == name and "default" in f for f in sv.schema["fields"])


@functools.lru_cache(maxsize=1)
def load_codec() -> Codec:
    """The process-wide :class:`Codec` over :func:`schemas.registry.load_registry` (cached)."""
    return Codec(load_registry())
