"""Confluent framing: bytes layout, the codec's first-byte dispatch, ids cached both ways,
registry errors (refused → EncodeError, unknown id → UnknownSchema, down → RegistryUnavailable).

The registry here is a small in-memory stand-in behind ``httpx.MockTransport`` speaking the
two Confluent REST calls we use; tests/integration/test_confluent_registry.py runs the same
paths against a real Apicurio Registry.
"""

from __future__ import annotations

import json

import httpx
import pytest

from schemas.codec import Codec, load_codec
from schemas.confluent import (
    CONFLUENT_HEADER_SIZE,
    ConfluentEncoder,
    ConfluentResolver,
    RegistryClient,
    RegistryUnavailable,
    frame,
    split_frame,
    subject_for,
)
from schemas.errors import DecodeError, EncodeError, SchemaError, UnknownSchema
from schemas.example_data import example_records
from schemas.registry import load_registry
from streams.producer import codec_for, encoder_for
from streams.settings import SchemasSettings

EXAMPLES = list(example_records())


class FakeRegistry:
    """Subjects and ids in memory; ``fail`` answers the next N requests with 503."""

    def __init__(self, first_id: int = 100) -> None:
        self.ids: dict[str, int] = {}
        self.texts: dict[int, str] = {}
        self.subjects: dict[str, list[int]] = {}
        self.next_id = first_id
        self.requests: list[str] = []
        self.fail = 0
        self.refuse = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url.path}")
        if self.fail:
            self.fail -= 1
            return httpx.Response(503, json={"error_code": 50301, "message": "busy"})
        parts = request.url.path.removeprefix("/apis/ccompat/v7").strip("/").split("/")
        if request.method == "POST" and parts[0] == "subjects" and parts[2] == "versions":
            if self.refuse:
                return httpx.Response(409, json={"error_code": 409, "message": "incompatible"})
            text = json.loads(request.content)["schema"]
            if text not in self.ids:
                self.ids[text] = self.next_id
                self.texts[self.next_id] = text
                self.next_id += 1
            self.subjects.setdefault(parts[1], []).append(self.ids[text])
            return httpx.Response(200, json={"id": self.ids[text]})
        if request.method == "GET" and parts[:2] == ["schemas", "ids"]:
            text = self.texts.get(int(parts[2]))
            if text is None:
                return httpx.Response(404, json={"error_code": 40403, "message": "not found"})
            return httpx.Response(200, json={"schema": text})
        return httpx.Response(404, json={"error_code": 404})


@pytest.fixture
def fake() -> FakeRegistry:
    return FakeRegistry()


def _pair(fake: FakeRegistry, attempts: int = 3) -> tuple[Codec, ConfluentEncoder]:
    client = RegistryClient("http://registry.test/apis/ccompat/v7", attempts=attempts,
                            transport=httpx.MockTransport(fake.handle))
    resolver = ConfluentResolver(client, load_registry())
    codec = Codec(load_registry(), confluent=resolver)
    return codec, ConfluentEncoder(codec, resolver)


# -- framing -------------------------------------------------------------------------------
def test_frame_is_magic_zero_then_a_big_endian_id_then_the_body():
    data = frame(0x01020304, b"body")
    assert data == b"\x00\x01\x02\x03\x04body"
    schema_id, body = split_frame(data)
    assert schema_id == 0x01020304 and bytes(body) == b"body"
    assert CONFLUENT_HEADER_SIZE == 5


@pytest.mark.parametrize("schema_id", [-1, 2**31])
def test_frame_rejects_ids_outside_java_int(schema_id):
    with pytest.raises(ValueError, match="32-bit"):
        frame(schema_id, b"")


@pytest.mark.parametrize(("data", "why"), [
    (b"\x00\x00\x01", "shorter than the 5-byte"),
    (b"\x01\x00\x00\x00\x01body", "not the magic byte"),
])
def test_split_frame_rejects_short_or_unmarked_bytes(data, why):
    with pytest.raises(DecodeError, match=why):
        split_frame(data)


def test_subject_is_the_record_full_name():
    assert subject_for(load_registry().latest("learning_event")) == "io.lvlup.learning_event"


# -- codec dispatch ------------------------------------------------------------------------
def test_a_codec_without_a_resolver_still_rejects_magic_zero_as_before():
    with pytest.raises(DecodeError, match="not an Avro single-object message"):
        load_codec().decode(frame(1, b"\x02"))


@pytest.mark.parametrize(("record_type", "version", "record"), EXAMPLES)
def test_every_example_round_trips_in_confluent_framing(fake, record_type, version, record):
    codec, encoder = _pair(fake)
    data = encoder.encode(record_type, record, version=version)
    assert data[:1] == b"\x00"
    sv = load_registry().get(record_type, version)
    assert data[CONFLUENT_HEADER_SIZE:] == load_codec().encode(
        record_type, record, version=version)[10:]
    assert fake.subjects[subject_for(sv)] == [int.from_bytes(data[1:5], "big")]
    assert codec.decode(data) == (record_type, record)


def test_both_framings_decode_with_one_codec_and_resolve_to_latest(fake):
    codec, encoder = _pair(fake)
    old = next(r for t, v, r in EXAMPLES if t == "learning_event" and v == 1)
    single = load_codec().encode("learning_event", old, version=1)
    confluent = encoder.encode("learning_event", old, version=1)
    assert codec.decode(single) == codec.decode(confluent) == ("learning_event", old)
    latest = load_registry().latest("learning_event").version
    assert codec.decode(confluent, "latest") == load_codec().decode(single, "latest")
    assert latest > 1


def test_ids_are_cached_both_ways(fake):
    codec, encoder = _pair(fake)
    rt, v, rec = EXAMPLES[0]
    first = encoder.encode(rt, rec, version=v)
    encoder.encode(rt, rec, version=v)
    codec.decode(first)
    assert fake.requests == [f"POST /apis/ccompat/v7/subjects/io.lvlup.{rt}/versions"]
    fresh_codec, _ = _pair(fake)  # a reader that never registered: one GET per id
    fresh_codec.decode(first)
    fresh_codec.decode(first)
    assert fake.requests[1:] == [f"GET /apis/ccompat/v7/schemas/ids/{fake.next_id - 1}"]


def test_unknown_id_is_unknown_schema_with_the_kafka_context(fake):
    codec, _ = _pair(fake)
    with pytest.raises(UnknownSchema, match="schema id 4242 is not in the schema registry") as ei:
        codec.decode(frame(4242, b"\x02"), topic="t", partition=1, offset=7)
    assert (ei.value.topic, ei.value.partition, ei.value.offset) == ("t", 1, 7)


def test_an_id_of_a_foreign_schema_is_unknown_schema(fake):
    fake.texts[7] = json.dumps({"type": "record", "name": "Other", "fields": []})
    codec, _ = _pair(fake)
    with pytest.raises(UnknownSchema, match="is not one of our schemas"):
        codec.decode(frame(7, b""))


def test_truncated_or_padded_bodies_are_decode_errors(fake):
    codec, encoder = _pair(fake)
    rt, v, rec = EXAMPLES[0]
    data = encoder.encode(rt, rec, version=v)
    with pytest.raises(DecodeError):
        codec.decode(data[:-3])
    with pytest.raises(DecodeError, match="trailing bytes"):
        codec.decode(data + b"\x00")
    with pytest.raises(DecodeError, match="shorter than the 5-byte"):
        codec.decode(b"\x00\x00")


# -- registry failures ---------------------------------------------------------------------
def test_transient_registry_failures_are_retried(fake):
    fake.fail = 2
    _, encoder = _pair(fake, attempts=3)
    rt, v, rec = EXAMPLES[0]
    assert encoder.encode(rt, rec, version=v)[:1] == b"\x00"
    assert len(fake.requests) == 3


def test_a_registry_that_stays_down_is_not_a_schema_error(fake):
    fake.fail = 10
    codec, encoder = _pair(fake, attempts=2)
    rt, v, rec = EXAMPLES[0]
    with pytest.raises(RegistryUnavailable, match="HTTP 503") as ei:
        encoder.encode(rt, rec, version=v)
    assert not isinstance(ei.value, SchemaError)  # consumers must not dead-letter on it
    with pytest.raises(RegistryUnavailable):
        codec.decode(frame(1, b""))


def test_a_refused_schema_is_an_encode_error(fake):
    fake.refuse = True
    _, encoder = _pair(fake)
    rt, v, rec = EXAMPLES[0]
    with pytest.raises(EncodeError, match="HTTP 409"):
        encoder.encode(rt, rec, version=v)


def test_an_unreachable_registry_is_unavailable():
    client = RegistryClient("http://127.0.0.1:9", timeout_s=0.5, attempts=2)
    with pytest.raises(RegistryUnavailable, match="ConnectError"):
        client.schema_text(1)
    client.close()


# -- settings → producer -------------------------------------------------------------------
def test_encoder_for_follows_the_wire_format_setting():
    codec = load_codec()
    assert encoder_for(SchemasSettings(), codec) is codec
    confluent = encoder_for(
        SchemasSettings(wire_format="confluent", registry_url="http://r.test:8081/"), codec)
    assert isinstance(confluent, ConfluentEncoder)
    assert confluent.resolver.client.base_url == "http://r.test:8081"


def test_codec_for_reads_confluent_framing_only_when_a_registry_is_configured():
    plain = codec_for(SchemasSettings())
    assert plain is load_codec() and plain.confluent is None
    for settings in (SchemasSettings(wire_format="confluent"),
                     SchemasSettings(registry_url="http://r.test:8081/")):
        both = codec_for(settings)
        assert both.confluent is not None
        # single-object records still decode without asking the registry
        record_type, _, record = EXAMPLES[0]
        data = load_codec().encode(record_type, record)
        assert both.decode(data)[0] == record_type


def test_the_embedded_registry_is_wanted_only_for_confluent_without_url():
    assert not SchemasSettings().embedded_registry
    assert SchemasSettings(wire_format="confluent").embedded_registry
    assert not SchemasSettings(wire_format="confluent", registry_url="http://x").embedded_registry
    assert SchemasSettings(registry_port=40000).registry_base_url() == (
        "http://127.0.0.1:40000/apis/ccompat/v7")
