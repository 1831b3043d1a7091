"""The in-process schema registry: every packaged ``avro/<record_type>.v<N>.avsc``, parsed once.

Each schema version is kept (old versions are needed to read old records) and can be looked up
by ``(record_type, version)`` or by its CRC-64-AVRO fingerprint, the key written on the wire
(:mod:`schemas.wire`). :func:`load_registry` builds the registry on first use and caches it; a
test or tool can also build a :class:`SchemaRegistry` from its own :class:`SchemaVersion` list.

Rules every packaged schema obeys (checked while loading, :class:`SchemaError` otherwise):
a record named ``<record_type>`` in namespace ``io.lvlup``; versions numbered 1..N without gaps;
the envelope fields ``event_id`` (uuid), ``occurred_at`` (timestamp-millis), ``producer`` and
``schema_version`` (int, default N) first; no field named ``type`` (JSON input lines use it
for the record type, :mod:`schemas.validation`); logical types on top-level fields only
(:func:`schemas.logical.logical_fields`); fingerprints unique.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from fastavro import parse_schema
from fastavro.schema import SchemaParseException, UnknownType

from schemas import resources, wire
from schemas.errors import SchemaError, UnknownSchema
from schemas.logical import logical_fields, strip_logical

__all__ = ["NAMESPACE", "SchemaRegistry", "SchemaVersion", "build_version", "load_registry"]

NAMESPACE = "io.lvlup"
"""Avro namespace of every record type."""

_ENVELOPE = (
    ("event_id", {"type": "string", "logicalType": "uuid"}),
    ("occurred_at", {"type": "long", "logicalType": "timestamp-millis"}),
    ("producer", "string"),
    ("schema_version", "int"),
)


@dataclass(frozen=True, slots=True)
class SchemaVersion:
    """One version of one record type.

    ``schema`` is the raw JSON schema as written in the ``.avsc`` file; ``parsed`` is fastavro's
    parsed form and ``physical`` the parsed form without ``logicalType`` attributes, which has
    the same fingerprint and makes fastavro read and write physical values (treat all three as
    read-only); ``logical_fields`` lists ``(field, logical_type)`` of the top-level fields with
    a logical type; ``fingerprint`` is the 8-byte little-endian CRC-64-AVRO fingerprint and
    ``header`` the 10-byte wire prefix (marker + fingerprint).
    """

    record_type: str
    version: int
    schema: Mapping[str, Any] = field(repr=False)
    parsed: dict[str, Any] = field(repr=False)
    physical: dict[str, Any] = field(repr=False)
    logical_fields: tuple[tuple[str, str], ...] = field(repr=False)
    canonical: str = field(repr=False)
    fingerprint: bytes
    header: bytes = field(repr=False)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Names of the record's top-level fields, in schema order."""
        return tuple(str(f["name"]) for f in self.schema["fields"])


def build_version(record_type: str, version: int, schema: Mapping[str, Any]) -> SchemaVersion:
    """Check and parse one raw schema into a :class:`SchemaVersion`.

    Raises :class:`SchemaError` when fastavro rejects the schema or a rule of this module's
    docstring is broken.
    """
    where = f"{record_type}.v{version}"
    if schema.get("type") != "record" or schema.get("name") != record_type:
        raise SchemaError(f"{where}: must be a record named {record_type!r}")
    if schema.get("namespace") != NAMESPACE:
        raise SchemaError(f"{where}: namespace must be {NAMESPACE!r}")
    fields = schema.get("fields", [])
    for index, (name, type_) in enumerate(_ENVELOPE):
        if index >= len(fields) or fields[index].get("name") != name:
            raise SchemaError(f"{where}: envelope field {index} must be {name!r}")
        if fields[index].get("type") != type_:
            raise SchemaError(f"{where}: field {name!r} must have type {type_!r}")
    if fields[3].get("default") != version:
        raise SchemaError(f"{where}: field 'schema_version' must default to {version}")
    if any(f.get("name") == "type" for f in fields):
        raise SchemaError(f"{where}: no field may be named 'type' (JSON input's record type)")
    try:
        parsed = cast(
            dict[str, Any], parse_schema(dict(schema), named_schemas={}, _write_hint=True)
        )
        physical = cast(
            dict[str, Any],
            parse_schema(strip_logical(dict(schema)), named_schemas={}, _write_hint=True),
        )
    except (SchemaParseException, UnknownType, ValueError, TypeError) as exc:
        raise SchemaError(f"{where}: invalid Avro schema: {exc}") from exc
    try:
        logical = logical_fields(dict(schema))
    except SchemaError as exc:
        raise SchemaError(f"{where}: {exc}") from exc
    canonical = wire.canonical_form(schema)
    fp = wire.fingerprint64(canonical)
    return SchemaVersion(
        record_type, version, schema, parsed, physical, logical, canonical, fp, wire.header(fp)
    )


class SchemaRegistry:
    """Every version of every record type, indexed by (record type, version) and fingerprint.

    Raises :class:`SchemaError` on construction when versions of a type are not 1..N or two
    schemas share a fingerprint. Lookups raise :class:`UnknownSchema`.
    """

    def __init__(self, versions: Iterable[SchemaVersion]) -> None:
        self._by_key: dict[tuple[str, int], SchemaVersion] = {}
        self._by_fingerprint: dict[bytes, SchemaVersion] = {}
        self._latest: dict[str, SchemaVersion] = {}
        for sv in sorted(versions, key=lambda v: (v.record_type, v.version)):
            expected = (
                self._latest[sv.record_type].version + 1 if sv.record_type in self._latest else 1
            )
            if sv.version != expected:
                raise SchemaError(
                    f"{sv.record_type}: version {sv.version} found, {expected} expected"
                )
            other = self._by_fingerprint.get(sv.fingerprint)
            if other is not None:
                raise SchemaError(
                    f"{sv.record_type}.v{sv.version} has the same fingerprint as "
                    f"{other.record_type}.v{other.version}"
                )
            self._by_key[(sv.record_type, sv.version)] = sv
            self._by_fingerprint[sv.fingerprint] = sv
            self._latest[sv.record_type] = sv

    @property
    def record_types(self) -> tuple[str, ...]:
        """Every record type, sorted."""
        return tuple(sorted(self._latest))

    def __iter__(self) -> Iterator[SchemaVersion]:
        """Iterate over every :class:`SchemaVersion`, by record type then version."""
        return iter(sorted(self._by_key.values(), key=lambda v: (v.record_type, v.version)))

    def __len__(self) -> int:
        """Number of schema versions."""
        return len(self._by_key)

    def latest(self, record_type: str) -> SchemaVersion:
        """The newest version of ``record_type``; :class:`UnknownSchema` if there is none."""
        try:
            return self._latest[record_type]
        except KeyError:
            raise UnknownSchema(f"unknown record type {record_type!r}") from None

    def get(self, record_type: str, version: int) -> SchemaVersion:
        """Version ``version`` of ``record_type``; :class:`UnknownSchema` if there is none."""
        try:
            return self._by_key[(record_type, version)]
        except KeyError:
            raise UnknownSchema(f"unknown schema {record_type}.v{version}") from None

    def versions(self, record_type: str) -> tuple[SchemaVersion, ...]:
        """Every version of ``record_type``, oldest first; :class:`UnknownSchema` if none."""
        newest = self.latest(record_type).version
        return tuple(self._by_key[(record_type, v)] for v in range(1, newest + 1))

    def by_fingerprint(self, fp: bytes) -> SchemaVersion:
        """The schema whose wire fingerprint is ``fp`` (8 bytes); :class:`UnknownSchema` if none."""
        try:
            return self._by_fingerprint[fp]
        except KeyError:
            raise UnknownSchema(f"no schema with fingerprint {fp.hex()}") from None

    def find_fingerprint(self, fp: bytes) -> SchemaVersion | None:
        """Like :meth:`by_fingerprint` but returns ``None`` when unknown (hot path, no raise)."""
        return self._by_fingerprint.get(fp)


@functools.lru_cache(maxsize=1)
def load_registry() -> SchemaRegistry:
    """The registry of the packaged schemas, built once per process (cached).

    Raises :class:`SchemaError` if a packaged file is misnamed, not JSON, or breaks a rule.
    """
    versions = []
    for vf in resources.list_versioned("avro", "avsc"):
        raw = resources.read_json("avro", vf.filename)
        if not isinstance(raw, dict):
            raise SchemaError(f"avro/{vf.filename}: a schema file must hold a JSON object")
        versions.append(build_version(vf.record_type, vf.version, raw))
    return SchemaRegistry(versions)
