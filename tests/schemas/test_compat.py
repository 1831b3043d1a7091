"""Schema evolution: each vN+1 reads vN data, and check_backward_compatible finds breakages."""

from __future__ import annotations

import copy
import io
import itertools

import pytest
from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.read import SchemaResolutionError

from schemas.checks import check_evolution
from schemas.codec import load_codec
from schemas.compat import check_backward_compatible
from schemas.example_data import example_records
from schemas.registry import load_registry


def evolved_pairs():
    registry = load_registry()
    for record_type in registry.record_types:
        versions = registry.versions(record_type)
        yield from itertools.pairwise(versions)


@pytest.mark.parametrize(
    ("old", "new"), list(evolved_pairs()), ids=lambda sv: f"{sv.record_type}.v{sv.version}"
)
def test_new_reader_reads_old_examples(old, new):
    codec = load_codec()
    new_fields = {f["name"]: f for f in new.schema["fields"]}
    examples = [r for t, v, r in example_records() if t == old.record_type and v == old.version]
    assert examples
    for record in examples:
        data = codec.encode(old.record_type, record, version=old.version)
        _, resolved = codec.decode(data, new.version)
        added = {n: f["default"] for n, f in new_fields.items() if n not in record}
        assert added, "a new version must add something"
        assert resolved == {**record, **added}
    assert check_backward_compatible(dict(old.schema), dict(new.schema)) == []


def test_all_packaged_evolution_is_backward_compatible():
    assert check_evolution(load_registry()) == []


def record(*fields, name="r"):
    return {"type": "record", "name": name, "namespace": "io.lvlup", "fields": list(fields)}


def field(name, type_, **extra):
    return {"name": name, "type": type_, **extra}


SEVERITY = {"type": "enum", "name": "Severity", "symbols": ["low", "high"]}


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            record(field("a", "int")),
            record(field("a", "int"), field("b", "string")),
            "r.b: field added without a default",
        ),
        (
            record(field("a", "string")),
            record(field("a", "int")),
            "r.a: type changed from string to int",
        ),
        (
            record(field("a", "long")),
            record(field("a", "int")),
            "r.a: type changed from long to int",
        ),
        (
            record(field("s", SEVERITY)),
            record(field("s", {**SEVERITY, "symbols": ["low"]})),
            "r.s: enum symbol 'high' removed (no default)",
        ),
        (
            record(field("a", ["null", "string"], default=None)),
            record(field("a", "string")),
            "r.a: union branch null is not readable",
        ),
        (
            record(field("a", "boolean")),
            record(field("a", ["null", "string"], default=None)),
            "r.a: no union branch reads boolean",
        ),
        (
            record(field("a", {"type": "array", "items": "string"})),
            record(field("a", {"type": "array", "items": "int"})),
            "r.a[]: type changed",
        ),
        (
            record(field("m", {"type": "map", "values": "double"})),
            record(field("m", {"type": "map", "values": "float"})),
            "r.m{}: type changed",
        ),
        (
            record(field("t", {"type": "long", "logicalType": "timestamp-millis"})),
            record(field("t", {"type": "long", "logicalType": "timestamp-micros"})),
            "r.t: logicalType changed",
        ),
        (
            record(field("a", "int")),
            record(field("a", "int"), name="other"),
            "record renamed from r to other",
        ),
        (
            record(field("e", record(field("x", "int"), name="Inner"))),
            record(field("e", record(field("x", "int"), field("y", "int"), name="Inner"))),
            "r.e.y: field added without a default",
        ),
    ],
)
def test_incompatible_pairs_are_reported(old, new, problem):
    problems = check_backward_compatible(old, new)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (record(field("a", "int")), record(field("a", "long"))),  # promotion
        (record(field("a", "int")), record(field("a", "double"))),
        (record(field("a", "string")), record(field("a", "bytes"))),
        (record(field("a", "int"), field("b", "int")), record(field("a", "int"))),  # removed field
        (record(field("a", "int")), record(field("a", "int"), field("b", "int", default=0))),
        (record(field("a", "string")), record(field("a", ["null", "string"], default=None))),
        (
            record(field("s", SEVERITY)),
            record(field("s", {**SEVERITY, "symbols": ["low", "high", "mid"]})),
        ),
        (
            record(field("s", SEVERITY)),
            record(field("s", {**SEVERITY, "symbols": ["low"], "default": "low"})),
        ),
        (record(field("a", "int")), record(field("b", "int", aliases=["a"]))),  # renamed with alias
        (record(field("a", "int")), record(field("a", "int"), name="r2") | {"aliases": ["r"]}),
    ],
)
def test_compatible_pairs_have_no_problems(old, new):
    assert check_backward_compatible(old, new) == []


def test_the_check_agrees_with_fastavro_on_a_breaking_change():
    old = dict(load_registry().get("learning_event", 1).schema)
    new = copy.deepcopy(dict(load_registry().get("learning_event", 2).schema))
    new["fields"].append(field("priority", "int"))  # no default: v1 data cannot fill it
    assert check_backward_compatible(old, new) == [
        "learning_event.priority: field added without a default"
    ]
    record = next(r for t, v, r in example_records() if t == "learning_event" and v == 1)
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(old), record)
    buf.seek(0)
    with pytest.raises(SchemaResolutionError, match="priority"):
        schemaless_reader(buf, parse_schema(old), parse_schema(new))
