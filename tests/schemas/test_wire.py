"""Single-object encoding and the CRC-64-AVRO fingerprint, against the Avro spec's algorithm."""

from __future__ import annotations

import json

import pytest

from schemas import wire
from schemas.codec import load_codec
from schemas.errors import DecodeError
from schemas.example_data import example_records
from schemas.logical import strip_logical
from schemas.registry import load_registry

EMPTY = 0xC15D213AA4D7A795  # the spec's CRC-64-AVRO "EMPTY" constant


def spec_rabin(data: bytes) -> int:
    """The algorithm as printed in the Avro 1.11.1 spec, "Schema Fingerprints"."""
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (EMPTY & -(fp & 1))
        table.append(fp)
    fp = EMPTY
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_null_schema_fingerprint_matches_the_spec_vector_and_fastavro():
    canonical = wire.canonical_form("null")
    assert canonical == '"null"'
    expected = spec_rabin(b'"null"')
    # Published vector for "null" (Avro's share/test/data/schema-tests.txt)
    assert expected == 7195948357588979594 == 0x63DD24E7CC258F8A
    fp = wire.fingerprint64(canonical)
    assert fp == expected.to_bytes(8, "little")
    assert fp.hex() == "8a8f25cce724dd63"  # little-endian: least significant byte first


# More vectors from the same file, given there as signed 64-bit integers.
SPEC_VECTORS = [
    ('"boolean"', -6970731678124411036),
    ('{"type":"int"}', 8247732601305521295),
    ('"long"', -3434872931120570953),
    ('{"type":"fixed","name":"foo","size":15}', 1756455273707447556),
    (
        '{"type":"record","name":"foo","fields":[{"name":"f1","type":"boolean"}]}',
        7843277075252814651,
    ),
]


@pytest.mark.parametrize(("schema", "signed"), SPEC_VECTORS)
def test_published_vectors(schema: str, signed: int):
    unsigned = signed & 0xFFFFFFFFFFFFFFFF
    canonical = wire.canonical_form(json.loads(schema))
    assert spec_rabin(canonical.encode()) == unsigned
    assert wire.fingerprint64(canonical) == unsigned.to_bytes(8, "little")


def test_every_packaged_schema_fingerprint_matches_the_spec_algorithm():
    for sv in load_registry():
        expected = spec_rabin(sv.canonical.encode()).to_bytes(8, "little")
        assert sv.fingerprint == expected, sv
        assert sv.header == b"\xc3\x01" + expected


def test_canonical_form_ignores_docs_defaults_and_logical_types():
    sv = load_registry().latest("agent_metrics")
    assert '"doc"' not in sv.canonical and '"default"' not in sv.canonical
    assert "logicalType" not in sv.canonical
    assert wire.fingerprint_of(strip_logical(dict(sv.schema))) == sv.fingerprint


def test_encoded_message_layout_is_marker_fingerprint_body():
    codec = load_codec()
    record_type, version, record = next(example_records())
    data = codec.encode(record_type, record, version=version)
    sv = load_registry().get(record_type, version)
    assert data[:2] == bytes([0xC3, 0x01])
    assert int.from_bytes(data[2:10], "little") == spec_rabin(sv.canonical.encode())
    fp, body = wire.split(data)
    assert fp == sv.fingerprint
    assert bytes(body) == data[wire.HEADER_SIZE :]


@pytest.mark.parametrize("data", [b"", b"\xc3\x01\x00", b"\x00\x01" + bytes(8) + b"x"])
def test_split_rejects_short_or_unmarked_messages(data: bytes):
    with pytest.raises(DecodeError):
        wire.split(data)


def test_header_requires_an_eight_byte_fingerprint():
    with pytest.raises(ValueError, match="8 bytes"):
        wire.header(b"\x00" * 7)
