"""The fast paths (schemas.fastcodec: the compiled module and the generated Python) against
fastavro: same bytes, values, errors. Every test that builds a fast path runs with both."""

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
from schemas.fastcodec import Fallback, compile_decoder, compile_encoder, compiled_module
from schemas.registry import load_registry

EXAMPLES = list(example_records())
BOTH = pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "generated"])


def test_the_compiled_module_is_built_here():
    """``make setup`` builds schemas._avrovm; without it the "compiled" cases below would
    silently test the generated Python twice."""
    assert compiled_module() is not None
    sv = load_registry().latest("proposal_gated")
    assert type(compile_decoder(sv.physical)).__module__ == "schemas._avrovm"


def _fastavro_bytes(sv, record) -> bytes:
    buf = BytesIO()
    buf.write(sv.header)
    schemaless_writer(buf, sv.physical, {**record, "schema_version": sv.version})
    return buf.getvalue()


@BOTH
def test_every_packaged_schema_gets_a_fast_path(compiled):
    missing = [f"{sv.record_type}.v{sv.version}" for sv in load_registry()
               if compile_encoder(sv.physical, sv.version, compiled=compiled) is None
               or compile_decoder(sv.physical, compiled=compiled) is None]
    assert missing == []


@pytest.mark.parametrize(("record_type", "version", "record"), EXAMPLES)
@BOTH
def test_fast_bytes_and_values_equal_fastavros(compiled, record_type, version, record):
    sv = load_registry().get(record_type, version)
    encode = compile_encoder(sv.physical, sv.version, compiled=compiled)
    decode = compile_decoder(sv.physical, compiled=compiled)
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
@BOTH
def test_declined_values_are_written_by_fastavro(compiled, field, value):
    sv = load_registry().latest("agent_metrics")
    record = next(r for t, v, r in EXAMPLES if t == "agent_metrics" and v == sv.version)
    record = {**record, field: value}
    with pytest.raises(Fallback):
        compile_encoder(sv.physical, sv.version, compiled=compiled)(record, sv.header)
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
@BOTH
def test_random_bodies_decode_as_fastavro_decodes_them(compiled, body):
    sv = load_registry().latest("agent_level_changed")
    decode = compile_decoder(sv.physical, compiled=compiled)
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


# --- property tests over every packaged schema (issue #22: the generated code is specialised
# per field, so each schema is its own code path) ---------------------------------------------

REGISTRY_VERSIONS = [(sv.record_type, sv.version) for sv in load_registry()]
_DOUBLES = st.one_of(st.floats(allow_nan=False), st.integers(-(2**53), 2**53))
_TEXT = st.one_of(
    st.text(max_size=80),                                       # one- and two-byte lengths
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "€"]), st.integers(8180, 8200)),
)


def _values(schema):
    """A hypothesis strategy of Python values of a fastavro-parsed physical ``schema``."""
    if isinstance(schema, list):
        return st.one_of(*[_values(branch) for branch in schema])
    if isinstance(schema, dict) and schema.get("type") not in (
            "record", "array", "map", "enum"):
        return _values(schema["type"])
    if isinstance(schema, str):
        return {
            "null": st.none(), "boolean": st.booleans(), "string": _TEXT, "double": _DOUBLES,
            "int": st.integers(-(2**31), 2**31 - 1), "long": st.integers(-(2**63), 2**63 - 1),
        }[schema]
    kind = schema["type"]
    if kind == "enum":
        return st.sampled_from(schema["symbols"])
    if kind == "array":
        return st.lists(_values(schema["items"]), max_size=4)
    if kind == "map":
        return st.dictionaries(st.text(max_size=12), _values(schema["values"]), max_size=3)
    return st.fixed_dictionaries({f["name"]: _values(f["type"]) for f in schema["fields"]})


def _fastavro_read(sv, body: bytes):
    """fastavro's record and the bytes it consumed, reading ``body`` as ``sv``."""
    buf = BytesIO(body)
    return schemaless_reader(buf, sv.physical, None), buf.tell()


@pytest.mark.parametrize(("record_type", "version"), REGISTRY_VERSIONS)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
@BOTH
def test_random_records_of_every_schema_match_fastavro(compiled, record_type, version, data):
    sv = load_registry().get(record_type, version)
    record = data.draw(_values(sv.physical))
    encoded = compile_encoder(sv.physical, sv.version, compiled=compiled)(record, sv.header)
    assert encoded == _fastavro_bytes(sv, record)
    decoded, end = compile_decoder(sv.physical, compiled=compiled)(encoded, len(sv.header))
    expected, consumed = _fastavro_read(sv, encoded[len(sv.header):])
    assert (decoded, end) == (expected, consumed + len(sv.header))


@pytest.mark.parametrize(("record_type", "version"), REGISTRY_VERSIONS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
@BOTH
def test_corrupted_bodies_of_every_schema_decode_as_fastavro_or_decline(compiled,
        record_type, version, data):
    """A valid body with bytes replaced, cut or inserted: the fast decoder returns what
    fastavro returns, or declines; it never returns something fastavro would not."""
    sv = load_registry().get(record_type, version)
    record = next(r for t, v, r in EXAMPLES if (t, v) == (record_type, version))
    body = bytearray(_fastavro_bytes(sv, record)[len(sv.header):])
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(body) - 1))
        edit = data.draw(st.sampled_from(["replace", "cut", "insert"]))
        byte = data.draw(st.integers(0, 255))
        if edit == "replace":
            body[at] = byte
        elif edit == "cut":
            del body[at:]
            if not body:
                body.append(byte)
        else:
            body.insert(at, byte)
    body_bytes = bytes(body)
    try:
        got = compile_decoder(sv.physical, compiled=compiled)(body_bytes, 0)
    except (Fallback, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError,
            struct.error):
        return  # declined: the codec then asks fastavro
    if got[1] > len(body_bytes):  # the codec only takes a result that ends at the end
        return
    assert got == _fastavro_read(sv, body_bytes)


def _reference_read_long(data: bytes, pos: int):
    """The plain loop of the Avro spec: at most 10 bytes (64 bits), least significant group
    first."""
    z = shift = 0
    for _ in range(10):
        b = data[pos]
        pos += 1
        if shift == 63 and b > 1:  # beyond 64 bits
            break
        z |= (b & 0x7F) << shift
        if b < 0x80:
            return (z >> 1) ^ -(z & 1), pos
        shift += 7
    raise Fallback


def _outcome(read, data: bytes, pos: int):
    try:
        return read(data, pos)
    except (IndexError, Fallback) as exc:
        return type(exc).__name__


@settings(max_examples=500, deadline=None)
@given(st.binary(min_size=1, max_size=12), st.integers(0, 3),
       st.integers(-(2**63), 2**63 - 1))
def test_read_long_equals_the_reference_loop(noise, pos, value):
    from schemas.varint import read_long as _read_long
    from schemas.varint import varint as _varint

    encoded = _varint(value)
    assert _read_long(encoded + noise, 0) == (value, len(encoded))
    pos = min(pos, len(noise) - 1)
    assert _outcome(_read_long, noise, pos) == _outcome(_reference_read_long, noise, pos)


@BOTH
def test_varints_of_every_size_equal_fastavros(compiled):
    """Zig-zag varints for each byte count 1..10 and both signs, written and read back."""
    sv = load_registry().latest("agent_metrics")
    record = next(r for t, v, r in EXAMPLES if t == "agent_metrics" and v == sv.version)
    encode = compile_encoder(sv.physical, sv.version, compiled=compiled)
    decode = compile_decoder(sv.physical, compiled=compiled)
    for bits in range(64):
        for value in (2**bits - 1, 2**bits, -(2**bits), -(2**bits) - 1):
            if not -(2**63) <= value < 2**63:
                continue
            rec = {**record, "occurred_at": value, "last_success": value}
            data = encode(rec, sv.header)
            assert data == _fastavro_bytes(sv, rec)
            assert decode(data, len(sv.header)) == (
                _fastavro_read(sv, data[len(sv.header):])[0], len(data))
            if -(2**31) <= value < 2**31:
                rec = {**rec, "total_learning_cycles": value}
                assert encode(rec, sv.header) == _fastavro_bytes(sv, rec)


def test_a_string_for_an_array_is_still_refused_after_the_fast_path_declines():
    codec = Codec(load_registry())
    sv = load_registry().latest("proposal_gated")
    record = next(r for t, v, r in EXAMPLES if t == "proposal_gated" and v == sv.version)
    with pytest.raises(EncodeError, match="'reasons' must be a list"):
        codec.encode("proposal_gated", {**record, "reasons": "abc"})


def test_the_codecs_quick_paths_equal_its_general_paths():
    """encode without a version / decode of bytes, with no reader version or "latest" (one
    dict look-up each) give the same answers as the explicit-version and bytearray calls,
    which take the general path."""
    codec = Codec(load_registry())
    for record_type, version, record in EXAMPLES:
        data = codec.encode(record_type, record, version=version)
        assert codec.decode(data) == codec.decode(bytearray(data)) == (record_type, {
            **codec.decode(bytearray(data))[1]})
        # reader "latest" (every sink's call): quick when the writer is the newest version
        assert codec.decode(data, "latest") == codec.decode(bytearray(data), "latest")
        if version == load_registry().latest(record_type).version:
            assert codec.encode(record_type, record) == data


@BOTH
@pytest.mark.parametrize("tenth", [0x01, 0x02, 0x7F, 0x80])
def test_a_varint_of_more_than_64_bits_is_never_decoded_differently(compiled, tenth):
    """A ten-byte varint whose last byte carries bits beyond 64 (or continues): the fast
    decoder returns fastavro's value or declines, never another value."""
    sv = load_registry().latest("agent_metrics")
    record = next(r for t, v, r in EXAMPLES if t == "agent_metrics" and v == sv.version)
    body = _fastavro_bytes(sv, record)[len(sv.header):]
    event_len = body[0] >> 1  # event_id: a one-byte length, then the UUID string
    at = 1 + event_len        # occurred_at, a varint of 6 bytes for a timestamp in ms
    end = at
    while body[end] & 0x80:
        end += 1
    forged = body[:at] + b"\xff" * 9 + bytes([tenth]) + body[end + 1:]
    try:
        got = compile_decoder(sv.physical, compiled=compiled)(forged, 0)
    except (Fallback, ValueError, TypeError, IndexError, KeyError, UnicodeDecodeError,
            struct.error):
        return
    assert got == _fastavro_read(sv, forged)
    assert not compiled or tenth == 0x01  # the compiled path reads 64 bits at most
