"""Avro single-object encoding: the byte layout of every Kafka message value we write.

Layout (Avro 1.11.1 specification, "Single-object encoding",
https://avro.apache.org/docs/1.11.1/specification/#single-object-encoding)::

    offset 0..1   C3 01               marker (format version 1)
    offset 2..9   fingerprint         CRC-64-AVRO (Rabin) of the schema's Parsing Canonical Form,
                                      8 bytes, little-endian
    offset 10..   body                Avro binary encoding of the record

The fingerprint is computed by fastavro (``fastavro.schema.to_parsing_canonical_form`` and
``fastavro.schema.fingerprint(…, "CRC-64-AVRO")``); fastavro returns the hex of the fingerprint's
little-endian bytes, which are therefore the wire bytes as they are. Parsing Canonical Form
drops ``doc``, ``default``, ``aliases`` and ``logicalType``, so two schemas differing only in
those attributes share a fingerprint (spec, "Parsing Canonical Form for Schemas").
"""

from __future__ import annotations

from typing import Any

from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import DecodeError

__all__ = [
    "FINGERPRINT_SIZE",
    "HEADER_SIZE",
    "MARKER",
    "canonical_form",
    "fingerprint64",
    "fingerprint_of",
    "header",
    "split",
]

MARKER = b"\xc3\x01"
"""The two-byte single-object marker (version 1 of the format)."""
FINGERPRINT_SIZE = 8
"""Bytes of a CRC-64-AVRO fingerprint."""
HEADER_SIZE = len(MARKER) + FINGERPRINT_SIZE
"""Bytes before the Avro body: marker + fingerprint = 10."""


def canonical_form(schema: Any) -> str:
    """The Parsing Canonical Form (a JSON string) of ``schema`` (raw JSON schema, not parsed)."""
    return str(to_parsing_canonical_form(schema))


def fingerprint64(canonical: str) -> bytes:
    """CRC-64-AVRO (Rabin) fingerprint of a Parsing Canonical Form, as 8 little-endian bytes.

    The spec's algorithm starts from ``EMPTY = 0xc15d213aa4d7a795`` and is documented under
    "Schema Fingerprints"; the integer is ``int.from_bytes(result, "little")``.
    """
    return bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO"))


def fingerprint_of(schema: Any) -> bytes:
    """The wire fingerprint (8 bytes, little-endian) of a raw JSON schema."""
    return fingerprint64(canonical_form(schema))


def header(fp: bytes) -> bytes:
    """The 10-byte message prefix (marker + fingerprint) for fingerprint ``fp`` (8 bytes)."""
    if len(fp) != FINGERPRINT_SIZE:
        raise ValueError(f"a CRC-64-AVRO fingerprint is {FINGERPRINT_SIZE} bytes, got {len(fp)}")
    return MARKER + fp


def split(data: bytes) -> tuple[bytes, memoryview]:
    """Split a single-object-encoded message into (fingerprint, body).

    ``fingerprint`` is 8 bytes; ``body`` is a zero-copy view of the Avro binary body.
    Raises :class:`DecodeError` when ``data`` is shorter than the header or lacks the marker.
    """
    if len(data) < HEADER_SIZE:
        raise DecodeError(
            f"message is {len(data)} bytes, shorter than the {HEADER_SIZE}-byte header"
        )
    if data[:2] != MARKER:
        raise DecodeError(f"message starts with {bytes(data[:2]).hex()}, not the marker c301")
    return bytes(data[2:HEADER_SIZE]), memoryview(data)[HEADER_SIZE:]
