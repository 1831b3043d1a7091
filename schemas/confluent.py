"""Confluent's wire format, with schema ids from a Confluent-compatible schema registry.

Layout (Confluent Schema Registry docs, "Wire format",
https://docs.confluent.io/platform/current/schema-registry/fundamentals/serdes-develop/index.html#wire-format)::

    offset 0      00                  magic byte
    offset 1..4   schema id           4 bytes, big-endian, assigned by the registry
    offset 5..    body                Avro binary encoding of the record

Our default remains Avro single-object encoding (:mod:`schemas.wire`); this module is used
when ``LVLUP_SCHEMAS__WIRE_FORMAT=confluent``. Readers accept both: a :class:`Codec` built
with a :class:`ConfluentResolver` dispatches on the first byte (``00`` → here, ``C3 01`` →
single-object), so one topic may hold both formats.

Subjects: RecordNameStrategy — every version of record type ``t`` is registered under subject
``io.lvlup.t`` (the record's full name), whatever the topic. A record type's versions are then
one subject whose compatibility the registry can check, a topic carrying several record types
needs no per-topic subject, and encoding needs no topic (``Codec.encode`` takes none). Kafka
clients of other stacks select it with ``value.subject.name.strategy=RecordNameStrategy``.

Ids are cached both ways for the life of the resolver (a registry never reuses an id for
other content): encoding costs one registration per schema version and process, decoding one
``GET /schemas/ids/{id}`` per id and process. The schema text fetched for an id is mapped to
our :class:`SchemaVersion` by its CRC-64-AVRO fingerprint (Parsing Canonical Form), so a
schema registered by someone else with other ``doc``/``default`` attributes still resolves.
Ids the registry does not know are not cached (each such record asks again) and raise
:class:`UnknownSchema`, like an unknown fingerprint: the record goes to the consumer's DLQ.

Errors: :class:`UnknownSchema` / :class:`DecodeError` / :class:`EncodeError` (poison, never
retried), and :class:`RegistryUnavailable` — the registry did not answer after the retries
(tenacity, exponential backoff). It is deliberately *not* a :class:`SchemaError`: the record
is fine, so a consumer must not dead-letter it but fail (and be restarted) instead.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import httpx
import tenacity

from schemas.codec import Codec
from schemas.errors import DecodeError, EncodeError, UnknownSchema
from schemas.registry import NAMESPACE, SchemaRegistry, SchemaVersion, load_registry
from schemas.wire import HEADER_SIZE, fingerprint_of

__all__ = [
    "CONFLUENT_HEADER_SIZE",
    "MAGIC",
    "ConfluentEncoder",
    "ConfluentResolver",
    "RegistryClient",
    "RegistryUnavailable",
    "confluent_codec",
    "frame",
    "split_frame",
    "subject_for",
]

MAGIC = b"\x00"
"""Confluent's magic byte (format version 0)."""
CONFLUENT_HEADER_SIZE = 5
"""Bytes before the Avro body: magic byte + 4-byte schema id."""
_MAX_ID = 2**31 - 1
"""Schema ids are Java ints (signed 32-bit); the registry hands out positive ones."""
_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryUnavailable(RuntimeError):
    """The schema registry did not answer (or answered 5xx) after every retry.

    Retryable by nature and *not* a :class:`schemas.errors.SchemaError`: the record is not at
    fault, so it must not go to a dead-letter topic.
    """


def frame(schema_id: int, body: bytes | memoryview) -> bytes:
    """``00`` + ``schema_id`` (4 bytes, big-endian) + ``body``.

    Raises :class:`ValueError` when ``schema_id`` is outside 0..2**31-1.
    """
    if not 0 <= schema_id <= _MAX_ID:
        raise ValueError(f"a schema id is a non-negative 32-bit int, got {schema_id}")
    return MAGIC + schema_id.to_bytes(4, "big") + body


def split_frame(data: bytes | bytearray | memoryview) -> tuple[int, memoryview]:
    """Split a Confluent-framed message into ``(schema id, body view)``.

    Raises :class:`DecodeError` when ``data`` is shorter than 5 bytes or lacks the magic byte.
    """
    if len(data) < CONFLUENT_HEADER_SIZE:
        raise DecodeError(
            f"message is {len(data)} bytes, shorter than the {CONFLUENT_HEADER_SIZE}-byte "
            "Confluent header"
        )
    if data[:1] != MAGIC:
        raise DecodeError(f"message starts with {bytes(data[:1]).hex()}, not the magic byte 00")
    return int.from_bytes(data[1:CONFLUENT_HEADER_SIZE], "big"), memoryview(data)[
        CONFLUENT_HEADER_SIZE:
    ]


def subject_for(sv: SchemaVersion) -> str:
    """The subject of ``sv`` under RecordNameStrategy: ``io.lvlup.<record_type>``."""
    return f"{NAMESPACE}.{sv.record_type}"


class _Retry(Exception):
    """A transient registry failure (connection error, timeout, 5xx, 429) worth retrying."""


class RegistryClient:
    """The two calls we need from a Confluent-compatible REST API, over httpx.

    ``base_url`` is the API root (``http://host:8081`` for Confluent,
    ``http://host:8080/apis/ccompat/v7`` for Apicurio). Each request times out after
    ``timeout_s`` seconds; transient failures are retried ``attempts`` times with exponential
    backoff (0.1 s doubling, at most 2 s) before :class:`RegistryUnavailable`. Thread-safe
    (httpx.Client is). ``close()`` releases the connection pool.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 5.0,
        attempts: int = 5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout_s,
            headers={"Accept": _CONTENT_TYPE},
            transport=transport,
        )
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=tenacity.wait_exponential(multiplier=0.1, max=2.0),
            retry=tenacity.retry_if_exception_type(_Retry),
            reraise=True,
        )

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> httpx.Response:
        """One request with retries; returns any non-transient response (caller checks status)."""

        def attempt() -> httpx.Response:
            try:
                response = self._http.request(
                    method,
                    path,
                    content=None if body is None else json.dumps(body),
                    headers=None if body is None else {"Content-Type": _CONTENT_TYPE},
                )
            except httpx.TransportError as exc:
                raise _Retry(f"{type(exc).__name__}: {exc}") from exc
            if response.status_code >= 500 or response.status_code == 429:
                raise _Retry(f"HTTP {response.status_code}: {response.text[:200]}")
            return response

        try:
            return self._retrying(attempt)
        except _Retry as exc:
            raise RegistryUnavailable(
                f"schema registry {self.base_url} unavailable ({method} {path}): {exc}"
            ) from exc

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` (Avro JSON text) under ``subject``; returns its schema id.

        Idempotent: registering a schema the subject already holds returns the existing id.
        Raises :class:`EncodeError` when the registry refuses the schema (incompatible 409,
        invalid 422, other 4xx) and :class:`RegistryUnavailable` when it does not answer.
        """
        response = self._request(
            "POST", f"/subjects/{subject}/versions", {"schema": schema, "schemaType": "AVRO"}
        )
        if response.status_code != 200:
            raise EncodeError(
                f"schema registry refused a schema for subject {subject!r}: "
                f"HTTP {response.status_code} {response.text[:300]}"
            )
        return _schema_id(response.json(), f"register {subject}")

    def schema_text(self, schema_id: int) -> str | None:
        """The schema (JSON text) with id ``schema_id``; ``None`` when the registry has none.

        Raises :class:`RegistryUnavailable` when the registry does not answer or answers
        something else than 200/404.
        """
        response = self._request("GET", f"/schemas/ids/{schema_id}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise RegistryUnavailable(
                f"schema registry {self.base_url}: GET /schemas/ids/{schema_id} answered "
                f"HTTP {response.status_code} {response.text[:200]}"
            )
        payload = response.json()
        text = payload.get("schema") if isinstance(payload, dict) else None
        if not isinstance(text, str):
            raise RegistryUnavailable(f"schema registry answered no schema for id {schema_id}")
        return text

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def _schema_id(payload: Any, what: str) -> int:
    schema_id = payload.get("id") if isinstance(payload, dict) else None
    if not isinstance(schema_id, int) or not 0 <= schema_id <= _MAX_ID:
        raise RegistryUnavailable(f"schema registry answered no schema id to {what}: {payload!r}")
    return schema_id


class ConfluentResolver:
    """Schema ids ↔ our :class:`SchemaVersion` s, through a :class:`RegistryClient`, cached.

    :meth:`writer_of` is the collaborator :class:`schemas.codec.Codec` calls for messages
    whose first byte is ``00``. Thread-safe: the caches are plain dicts written under a lock
    (a race at worst registers or fetches the same schema twice, which is idempotent).
    """

    def __init__(self, client: RegistryClient, registry: SchemaRegistry) -> None:
        self.client = client
        self.registry = registry
        self._ids: dict[bytes, int] = {}
        self._versions: dict[int, SchemaVersion] = {}
        self._lock = threading.Lock()

    def id_for(self, sv: SchemaVersion) -> int:
        """The registry id of ``sv``, registering it under :func:`subject_for` on first use.

        Raises :class:`EncodeError` (refused) or :class:`RegistryUnavailable`.
        """
        schema_id = self._ids.get(sv.fingerprint)
        if schema_id is None:
            schema_id = self.client.register(subject_for(sv), json.dumps(sv.schema))
            with self._lock:
                self._ids[sv.fingerprint] = schema_id
                self._versions.setdefault(schema_id, sv)
        return schema_id

    def version_for(self, schema_id: int) -> SchemaVersion:
        """Our schema version registered as ``schema_id``.

        Raises :class:`UnknownSchema` when the registry has no such id or its schema is none
        of ours, :class:`DecodeError` when the registry's text is not a JSON Avro schema, and
        :class:`RegistryUnavailable`.
        """
        sv = self._versions.get(schema_id)
        if sv is not None:
            return sv
        text = self.client.schema_text(schema_id)
        if text is None:
            raise UnknownSchema(f"schema id {schema_id} is not in the schema registry")
        try:
            fp = fingerprint_of(json.loads(text))
        except (ValueError, TypeError, KeyError) as exc:  # fastavro's canonical form on bad JSON
            raise DecodeError(f"schema id {schema_id} is not an Avro schema: {exc}") from exc
        sv = self.registry.find_fingerprint(fp)
        if sv is None:
            raise UnknownSchema(
                f"schema id {schema_id} (fingerprint {fp.hex()}) is not one of our schemas"
            )
        with self._lock:
            self._versions[schema_id] = sv
            self._ids.setdefault(sv.fingerprint, schema_id)
        return sv

    def writer_of(self, data: bytes | bytearray | memoryview) -> tuple[SchemaVersion, int]:
        """``(writer schema, offset of the Avro body)`` of a Confluent-framed message.

        Raises :class:`DecodeError` (short or no magic byte), :class:`UnknownSchema`,
        :class:`RegistryUnavailable`.
        """
        schema_id, _body = split_frame(data)
        return self.version_for(schema_id), CONFLUENT_HEADER_SIZE


class ConfluentEncoder:
    """Encodes records in Confluent's framing; same contract as :meth:`Codec.encode`.

    The body is what :meth:`Codec.encode` writes after its 10-byte single-object header, so
    both formats share one encoder (defaults, logical types, error messages).
    """

    def __init__(self, codec: Codec, resolver: ConfluentResolver) -> None:
        self.codec = codec
        self.resolver = resolver

    def encode(
        self, record_type: str, record: Mapping[str, Any], *, version: int | None = None
    ) -> bytes:
        """``00`` + schema id + Avro body of ``record`` as ``record_type`` (newest or ``version``).

        Raises :class:`UnknownSchema`, :class:`EncodeError` (as :meth:`Codec.encode`, or the
        registry refused the schema) and :class:`RegistryUnavailable`.
        """
        single = self.codec.encode(record_type, record, version=version)
        sv = self.codec.registry.by_fingerprint(single[2:HEADER_SIZE])
        return frame(self.resolver.id_for(sv), memoryview(single)[HEADER_SIZE:])


def confluent_codec(
    base_url: str, *, registry: SchemaRegistry | None = None, timeout_s: float = 5.0
) -> tuple[Codec, ConfluentEncoder]:
    """A :class:`Codec` that also decodes Confluent-framed messages, and a matching encoder.

    ``base_url`` is the Confluent-compatible API root
    (:meth:`streams.settings.SchemasSettings.registry_base_url`); ``registry`` defaults to the
    packaged schemas. Nothing is sent to the registry until the first encode or decode.
    """
    schemas = registry if registry is not None else load_registry()
    resolver = ConfluentResolver(RegistryClient(base_url, timeout_s=timeout_s), schemas)
    codec = Codec(schemas, confluent=resolver)
    return codec, ConfluentEncoder(codec, resolver)
