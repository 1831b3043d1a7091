"""Structured output: schema checks before generation, fail-closed parsing after."""

from __future__ import annotations

import pytest

from inference.errors import StructuredOutputError
from inference.structured import compile_schema, find_contradiction, parse_structured

TOPIC = {
    "type": "object",
    "properties": {
        "topic": {"type": "string"},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["topic", "score"],
}


def _code(excinfo: pytest.ExceptionInfo[StructuredOutputError]) -> str:
    return excinfo.value.error_code


def test_valid_output_is_parsed_and_returned():
    compiled = compile_schema(TOPIC)
    assert parse_structured('{"topic": "rust", "score": 7}', "stop", compiled) == {
        "topic": "rust",
        "score": 7,
    }


@pytest.mark.parametrize(
    ("text", "finish", "code"),
    [
        ('{"topic": "rust", "score": 7}', "length", "truncated"),  # even though it parses
        ("12", "length", "truncated"),
        ('{"topic": "rust", "score": ', "stop", "invalid_json"),
        ("Sure! Here it is", "stop", "invalid_json"),
        ('{"topic": "rust", "score": 11}', "stop", "schema_violation"),
        ('{"topic": "rust"}', "stop", "schema_violation"),
        ('"just a string"', "stop", "schema_violation"),
    ],
)
def test_bad_outputs_fail_closed(text, finish, code):
    with pytest.raises(StructuredOutputError) as excinfo:
        parse_structured(text, finish, compile_schema(TOPIC))
    assert _code(excinfo) == code


def test_violation_message_names_the_path():
    with pytest.raises(StructuredOutputError, match=r"\$\.score"):
        parse_structured('{"topic": "x", "score": 99}', "stop", compile_schema(TOPIC))


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "enum": []},
        {"type": "integer", "minimum": 10, "maximum": 1},
        {"type": "integer", "minimum": 0.2, "maximum": 0.8},
        {"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1},
        {"type": "string", "minLength": 5, "maxLength": 2},
        {"type": "array", "minItems": 3, "maxItems": 1},
        {"not": {}},
        False,
        {"allOf": [{"type": "string"}, {"type": "integer"}]},
        {"type": "string", "enum": [1, 2]},
        {"const": "a", "enum": ["b"]},
        {"type": "object", "properties": {"a": False}, "required": ["a"]},
        {"type": "object", "additionalProperties": False, "required": ["a"]},
        {"anyOf": [{"type": "string", "enum": []}, {"minimum": 3, "maximum": 2}]},
        {"type": "array", "minItems": 1, "items": {"enum": []}},
    ],
)
def test_unsatisfiable_schemas_are_unsupported(schema):
    with pytest.raises(StructuredOutputError) as excinfo:
        compile_schema(schema)
    assert _code(excinfo) == "schema_unsupported"


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "foo"},  # invalid against the meta-schema
        {"$ref": "http://example.invalid/schema.json"},  # the grammar converter cannot resolve
        ["not", "an", "object"],
    ],
)
def test_invalid_or_unconvertible_schemas_are_unsupported(schema):
    with pytest.raises(StructuredOutputError) as excinfo:
        compile_schema(schema)
    assert _code(excinfo) == "schema_unsupported"


def test_satisfiable_schemas_pass_the_contradiction_check():
    for schema in (
        TOPIC,
        {"type": "integer", "minimum": 1, "maximum": 1},
        {"anyOf": [{"type": "string", "enum": []}, {"type": "integer"}]},
        {"type": "array", "items": {"enum": []}},  # the empty array satisfies it
        {"type": "object", "properties": {"a": False}},  # optional impossible property
    ):
        assert find_contradiction(schema) is None, schema


def test_grammar_pins_small_integer_ranges():
    gbnf = compile_schema(TOPIC).gbnf
    assert 'score ::= "0" | "1" | "2"' in gbnf and '"10"' in gbnf and '"11"' not in gbnf


def test_grammar_keeps_large_integer_ranges_open():
    gbnf = compile_schema({"type": "integer", "minimum": 0, "maximum": 10_000}).gbnf
    assert "integral-part" in gbnf


def test_compiled_keeps_the_original_schema_for_validation():
    compiled = compile_schema(TOPIC)
    assert compiled.schema is TOPIC
    assert compiled.schema["properties"]["score"] == {
        "type": "integer",
        "minimum": 0,
        "maximum": 10,
    }
