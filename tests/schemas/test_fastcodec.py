"""The generated fast path (schemas.fastcodec) against fastavro: same bytes, values, errors."""

from __future__ import annotations

import struct
from io import BytesIO
from types import MappingProxyType

import pytest
from fastavro import schemaless_reader, schemaless_writer
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.codec import Codec
from schemas.errors import DecodeError, EncodeError
from schemas.example_data import example_records
from schemas.fastcodec import Fallback, compile_decoder, compile_encoder
from schemas.registry import load_registry

EXAMPLES = list(example_records())


def _fastavro_bytes(sv, record) -> bytes:
    buf = BytesIO()
    buf.write(sv.header)
    schemaless_writer(buf, sv.physical, {**record, "schema_version": sv.version})
    return buf.getvalue()


def test_every_packaged_schema_gets_a_fast_path():
    missing = [f"{sv.record_type}.v{sv.version}" for sv in load_registry()
               if compile_encoder(sv.physical, sv.version) is None
               or compile_decoder(sv.physical) is None]
    assert missing == []


@pytest.mark.parametrize(("record_type", "version", "record"), EXAMPLES)
def test_fast_bytes_and_values_equal_fastavros(record_type, version, record):
    sv = load_registry().get(record_type, version)
    encode = compile_encoder(sv.physical, sv.version)
    decode = compile_decoder(sv.physical)
    data = encode(record, sv.header)
    assert data == _fastavro_bytes(sv, record)
    decoded, end = decode(data, len(sv.header))
    assert end == len(data)
    assert decoded == schemaless_reader(BytesIO(data[len(sv.header):]), sv.physical, None)


@pytest.mark.parametrize(("field", "value"), [
    ("xp", True),              # bool for an int: fastavro writes it, the fast path declines
    ("xp", 2**40),             # outside 32 bits: fastavro writes it as given
    ("learning_score", True),  # bool for a double
])
def test_declined_values_are_written_by_fastavro(field, value):
    sv = load_registry().latest("agent_metrics")
    record = next(r for t, v, r in EXAMPLES if t == "agent_metrics" and v == sv.version)
    record = {**record, field: value}
    with pytest.raises(Fallback):
        compile_encoder(sv.physical, sv.version)(record, sv.header)
    assert Codec(load_registry()).encode("agent_metrics", record) == _fastavro_bytes(sv, record)


def test_a_mapping_that_is_not_a_dict_goes_through_fastavro():
    codec = Codec(load_registry())
    t, v, record = next(e for e in EXAMPLES if e[0] == "agent_level_changed")
    assert codec.encode(t, MappingProxyType(record), version=v) == codec.encode(
        t, record, version=v)


def test_wrong_types_still_raise_the_codecs_encode_error():
    codec = Codec(load_registry())
    t, v, record = next(e for e in EXAMPLES if e[0] == "agent_level_changed")
    with pytest.raises(EncodeError, match="agent_id"):
        codec.encode(t, {**record, "agent_id": 7}, version=v)
    missing = {k: val for k, val in record.items() if k != "reason"}
    with pytest.raises(EncodeError, match="missing field 'reason'"):
        codec.encode(t, missing, version=v)


def test_corrupt_bytes_raise_decode_error_not_a_fast_path_error():
    codec = Codec(load_registry())
    t, v, record = next(e for e in EXAMPLES if e[0] == "agent_level_changed")
    data = codec.encode(t, record, version=v)
    with pytest.raises(DecodeError):
        codec.decode(data[:-3])               # truncated
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode(data + b"\x00")          # trailing byte
    header = len(load_registry().get(t, v).header)
    with pytest.raises(DecodeError):          # a string length running past the end
        codec.decode(data[:header] + b"\x7e" + data[header + 1:])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=120))
def test_random_bodies_decode_as_fastavro_decodes_them(body):
    sv = load_registry().latest("agent_level_changed")
    decode = compile_decoder(sv.physical)
    try:
        expected = schemaless_reader(BytesIO(body), sv.physical, None)
        reference = BytesIO(body)
        schemaless_reader(reference, sv.physical, None)
        consumed = reference.tell()
    except Exception:  # any fastavro failure: the fast path must not succeed then
        expected = None
    try:
        got, end = decode(body, 0)
    except (Fallback, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError,
            struct.error):
        return  # declined: the codec then asks fastavro
    assert expected is not None
    assert (got, end) == (expected, consumed)
