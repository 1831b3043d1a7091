"""Errors of the ``schemas`` package (schema registry, wire format, codec, catalog, validation).

Hierarchy::

    SchemaError             base; optional Kafka context: topic, partition, offset
    ├── UnknownSchema       no schema for a fingerprint, record type or version
    ├── EncodeError         a record does not fit its schema (missing field, wrong type)
    ├── DecodeError         bytes are not a single-object-encoded record of a known schema
    ├── ValidationFailed    a JSON input record was rejected; ``field`` names the culprit
    ├── CatalogError        a topic definition is invalid or a topic is unknown
    └── RecordNotWritable   the writer lacks the record type's authority (catalog ``authority``)

None of them is retryable: the same bytes or the same record fail the same way again, so a
consumer routes the record to its dead-letter topic (``<group>.dlq``) instead of retrying.
Third-party errors (fastavro, pydantic, PyYAML) are translated at the boundary with
``raise … from exc`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "CatalogError",
    "DecodeError",
    "EncodeError",
    "RecordNotWritable",
    "SchemaError",
    "UnknownSchema",
    "ValidationFailed",
]


class SchemaError(Exception):
    """Base of every error raised by :mod:`schemas`.

    ``topic``, ``partition`` and ``offset`` locate the Kafka record being processed when the
    caller supplied them (``None`` otherwise); they are appended to ``str(error)``.
    """

    def __init__(
        self,
        message: str,
        *,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.topic = topic
        self.partition = partition
        self.offset = offset

    def __str__(self) -> str:
        if self.topic is None and self.partition is None and self.offset is None:
            return self.message
        return (
            f"{self.message} (topic={self.topic} partition={self.partition} offset={self.offset})"
        )


class UnknownSchema(SchemaError):
    """No schema is registered for a fingerprint, a record type or a (record type, version)."""


class EncodeError(SchemaError):
    """A record could not be encoded: a field is missing or has a value its schema rejects."""


class DecodeError(SchemaError):
    """Bytes are not one valid single-object-encoded record (bad marker, truncated, corrupt)."""


class ValidationFailed(SchemaError):
    """A JSON input record was rejected; the message is one line and ``field`` names the field.

    ``field`` is a dotted path (``"messages.0.role"``) or ``None`` when the problem is the whole
    record (not an object, too large).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class CatalogError(SchemaError):
    """A topic definition file is invalid, or a topic or record type is not in the catalog."""


class RecordNotWritable(SchemaError):
    """The writer may not write this record type: its catalog ``authority`` (``worker``,
    ``admin`` …) is not one the writer holds (:class:`schemas.catalog.Writer`).

    ``record_type``, ``authority``, ``owner`` (the topic's owning component) and ``writer``
    are kept for machine-readable answers (the API's 403 details).
    """

    def __init__(self, record_type: str, authority: str, owner: str, writer: str) -> None:
        super().__init__(f"record type {record_type!r} has authority {authority!r}: written "
                         f"by {owner}, not by a {writer}")
        self.record_type = record_type
        self.authority = authority
        self.owner = owner
        self.writer = writer
