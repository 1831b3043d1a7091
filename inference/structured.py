"""Structured (JSON-Schema) output that fails closed.

Two steps around generation:

1. :func:`compile_schema` before any token is spent: the schema must be a valid JSON Schema
   (``jsonschema`` meta-schema check), must not be obviously unsatisfiable
   (:func:`find_contradiction`: ``false``, ``enum: []``, ``minimum > maximum``, …) and must convert
   to a GBNF grammar (llama-cpp-python's ``json_schema_to_gbnf``, a port of llama.cpp's
   ``json_schema_to_grammar.py``). Any failure → ``StructuredOutputError("schema_unsupported")``.
   The local engine additionally checks that llama.cpp parses the grammar
   (:meth:`inference.engine.LlamaEngine.check_grammar`): an unparsable grammar crashes
   llama-cpp-python (NULL sampler, SIGSEGV), and its ``response_format`` path silently falls
   back to free JSON when conversion fails – so we build the grammar ourselves.
2. :func:`parse_structured` after generation: ``finish_reason == "length"`` → ``truncated``
   (even if the cut text parses: ``12`` may be a cut ``123``); not JSON → ``invalid_json``;
   not valid against the *original* schema → ``schema_violation``.

The converter ignores numeric bounds; for the grammar only, an integer with ``minimum`` and
``maximum`` at most :data:`MAX_ENUM_RANGE` apart is rewritten as an ``enum`` of its values, so
``{"type": "integer", "minimum": 0, "maximum": 10}`` cannot produce ``1000000000000000``.
Validation always uses the schema as given.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from jsonschema import exceptions as js_exceptions
from jsonschema import validators
from jsonschema.protocols import Validator

from inference.errors import StructuredOutputError

__all__ = [
    "MAX_ENUM_RANGE",
    "CompiledSchema",
    "compile_schema",
    "find_contradiction",
    "parse_structured",
]

#: Largest integer range (maximum - minimum) rewritten as an enum for the grammar.
MAX_ENUM_RANGE = 256

_LITERAL_KEYS = frozenset({"enum", "const", "default", "examples", "required"})


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    """A checked schema: the original, its validator and the GBNF grammar (root rule ``root``)."""

    schema: dict[str, Any]
    validator: Validator
    gbnf: str


def compile_schema(schema: Any) -> CompiledSchema:
    """Check ``schema`` and build its grammar. Raises ``StructuredOutputError`` (unsupported)."""
    if not isinstance(schema, dict):
        raise StructuredOutputError("schema_unsupported", "json_schema must be a JSON object")
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except js_exceptions.SchemaError as exc:
        raise StructuredOutputError("schema_unsupported", f"invalid schema: {exc.message}") from exc
    validator = cls(schema)
    problem = find_contradiction(schema, validator_cls=cls)
    if problem is not None:
        raise StructuredOutputError("schema_unsupported", f"unsatisfiable schema: {problem}")
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        gbnf = json_schema_to_gbnf(json.dumps(_grammar_schema(schema)))
    except (AssertionError, ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise StructuredOutputError(
            "schema_unsupported", f"no grammar for this schema: {exc!s:.200}"
        ) from exc
    return CompiledSchema(schema=schema, validator=validator, gbnf=gbnf)


def parse_structured(text: str, finish_reason: str, compiled: CompiledSchema) -> Any:
    """The parsed, validated JSON value of ``text``; raises ``StructuredOutputError``."""
    if finish_reason == "length":
        raise StructuredOutputError(
            "truncated", f"output cut at max_tokens after {len(text)} characters"
        )
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise StructuredOutputError("invalid_json", f"output is not JSON: {exc}") from exc
    error = js_exceptions.best_match(compiled.validator.iter_errors(value))
    if error is not None:
        where = error.json_path
        raise StructuredOutputError("schema_violation", f"{where}: {error.message:.300}")
    return value


def find_contradiction(schema: Any, *, validator_cls: Any = None) -> str | None:
    """A reason why no JSON value can satisfy ``schema``, or None if none was found.

    Detects, recursively through ``allOf``, ``anyOf``/``oneOf`` (all branches), required
    properties and non-empty arrays: the ``false`` schema, ``not: {}``, ``type: []``, an
    ``enum``/``const`` with no value valid against the rest of the schema, and
    ``minimum > maximum`` (also exclusive, and no integer in range), ``minLength > maxLength``,
    ``minItems > maxItems``, ``minProperties > maxProperties``, ``allOf`` with disjoint types.
    It is a heuristic: passing it does not prove satisfiable (validation still fails closed).
    """
    cls = validator_cls or validators.Draft202012Validator
    return _contradiction(schema, cls, depth=0)


def _contradiction(schema: Any, cls: Any, depth: int) -> str | None:
    if depth > 32:
        return None
    if schema is False:
        return "false schema"
    if not isinstance(schema, dict):
        return None
    if schema.get("not") in ({}, True):
        return "'not' of a schema that accepts everything"
    types = schema.get("type")
    if isinstance(types, list) and not types:
        return "empty 'type' list"
    for key in ("enum", "const"):
        if key in schema:
            values = schema[key] if key == "enum" else [schema[key]]
            if not isinstance(values, list) or not values:
                return f"empty '{key}'"
            rest = {k: v for k, v in schema.items() if k != key}
            if not any(cls(rest).is_valid(v) for v in values):
                return f"no '{key}' value satisfies the rest of the schema"
    problem = _bounds(schema)
    if problem is not None:
        return problem
    subs = schema.get("allOf") or []
    type_sets = [_type_set(s) for s in [schema, *subs] if _type_set(s) is not None]
    if len(type_sets) > 1 and not set.intersection(*type_sets):  # type: ignore[arg-type]
        return "'allOf' branches require disjoint types"
    for sub in subs:
        if (found := _contradiction(sub, cls, depth + 1)) is not None:
            return f"allOf: {found}"
    for key in ("anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            found_all = [_contradiction(b, cls, depth + 1) for b in branches]
            if not branches or all(f is not None for f in found_all):
                return f"every '{key}' branch is unsatisfiable"
    props = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name in props and (found := _contradiction(props[name], cls, depth + 1)) is not None:
            return f"required property {name!r}: {found}"
        if name not in props and schema.get("additionalProperties") is False:
            return f"required property {name!r} is not allowed (additionalProperties false)"
    items = schema.get("items")
    if schema.get("minItems", 0) > 0 and isinstance(items, dict | bool):
        found = _contradiction(items, cls, depth + 1)
        if found is not None:
            return f"items: {found}"
    return None


def _bounds(schema: dict[str, Any]) -> str | None:
    for low_key, high_key in (
        ("minLength", "maxLength"),
        ("minItems", "maxItems"),
        ("minProperties", "maxProperties"),
    ):
        low, high = schema.get(low_key), schema.get(high_key)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            return f"{low_key} {low} > {high_key} {high}"
    low, high, low_open, high_open = _numeric_range(schema)
    if low > high or (low == high and (low_open or high_open)):
        return f"numeric range is empty ({low}..{high})"
    if schema.get("type") == "integer" and math.isfinite(low) and math.isfinite(high):
        first = math.floor(low) + 1 if low_open or low != math.floor(low) else low
        last = math.ceil(high) - 1 if high_open or high != math.ceil(high) else high
        if first > last:
            return f"no integer in range ({low}..{high})"
    return None


def _numeric_range(schema: dict[str, Any]) -> tuple[float, float, bool, bool]:
    low, high, low_open, high_open = -math.inf, math.inf, False, False
    if _is_number(schema.get("minimum")):
        low = float(schema["minimum"])
    if _is_number(schema.get("exclusiveMinimum")) and schema["exclusiveMinimum"] >= low:
        low, low_open = float(schema["exclusiveMinimum"]), True
    if _is_number(schema.get("maximum")):
        high = float(schema["maximum"])
    if _is_number(schema.get("exclusiveMaximum")) and schema["exclusiveMaximum"] <= high:
        high, high_open = float(schema["exclusiveMaximum"]), True
    return low, high, low_open, high_open


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _type_set(schema: Any) -> set[str] | None:
    if not isinstance(schema, dict) or "type" not in schema:
        return None
    types = schema["type"]
    found = {types} if isinstance(types, str) else set(types)
    if "number" in found:
        found.add("integer")
    return found


def _grammar_schema(node: Any) -> Any:
    """A copy of the schema with small bounded integer ranges rewritten as enums."""
    if isinstance(node, list):
        return [_grammar_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: (v if k in _LITERAL_KEYS else _grammar_schema(v)) for k, v in node.items()}
    if out.get("type") == "integer" and "enum" not in out and "const" not in out:
        low, high, low_open, high_open = _numeric_range(out)
        if math.isfinite(low) and math.isfinite(high) and high - low <= MAX_ENUM_RANGE:
            first = math.floor(low) + 1 if low_open or low != math.floor(low) else int(low)
            last = math.ceil(high) - 1 if high_open or high != math.ceil(high) else int(high)
            multiple = out.get("multipleOf")
            values = [
                v
                for v in range(int(first), int(last) + 1)
                if not (_is_number(multiple) and multiple and v % multiple)
            ]
            return {"enum": values}
    return out
