"""``schemas.records`` (typed record shapes) is generated from the ``.avsc`` files and kept in
step with them; its shapes describe what the codec decodes."""

from __future__ import annotations

import types
import typing
from pathlib import Path

import pytest

import schemas.records as records
from schemas.codec import load_codec
from schemas.example_data import example_records
from schemas.gen_records import generate
from schemas.registry import load_registry

_PY = {str: (str,), int: (int,), float: (float, int), bool: (bool,), bytes: (bytes,)}


def test_the_checked_in_module_is_what_the_generator_writes():
    checked_in = Path(records.__file__).read_text(encoding="utf-8")
    assert checked_in == generate(load_registry()), "run: python -m schemas.gen_records"


def test_every_record_type_has_its_newest_fields():
    registry = load_registry()
    assert set(typing.get_args(records.RecordType)) == set(registry.record_types)
    for record_type in registry.record_types:
        shape = records.RECORD_SHAPES[record_type]
        assert tuple(shape.__annotations__) == registry.latest(record_type).field_names


def _matches(value: object, hint: object) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if origin is typing.Literal:
        return value in args
    if origin is list:
        return isinstance(value, list) and all(_matches(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_matches(v, args[1]) for v in value.values())
    if isinstance(hint, type) and typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        return isinstance(value, dict) and all(_matches(value[k], h) for k, h in hints.items())
    return isinstance(value, _PY[hint]) and not (hint is int and isinstance(value, bool))


def _newest_examples() -> list[tuple[str, dict[str, object]]]:
    registry = load_registry()
    return [(rt, rec) for rt, version, rec in example_records()
            if version == registry.latest(rt).version]


@pytest.mark.parametrize(("record_type", "record"), _newest_examples())
def test_decoded_examples_have_the_generated_shape(record_type, record):
    codec = load_codec()
    _rt, decoded = codec.decode(codec.encode(record_type, record), "latest")
    hints = typing.get_type_hints(records.RECORD_SHAPES[record_type])
    assert set(decoded) == set(hints)
    for name, hint in hints.items():
        assert _matches(decoded[name], hint), (record_type, name, decoded[name], hint)
