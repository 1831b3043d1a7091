"""Models built from the .avsc files: same fields, types and optionality as the Avro schemas."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.models import RecordModel, record_model
from schemas.registry import load_registry

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def deref(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = {
            **defs[node["$ref"].rsplit("/", 1)[-1]],
            **{k: v for k, v in node.items() if k != "$ref"},
        }
    return node


def assert_json_type(avro_type, node: dict, defs: dict, where: str) -> None:
    """The JSON Schema pydantic derived must say what the Avro type says (independent mapping)."""
    node = deref(node, defs)
    if isinstance(avro_type, list):
        assert avro_type[0] == "null" and len(avro_type) == 2, where
        branches = node["anyOf"]
        assert {"type": "null"} in branches, where
        assert_json_type(
            avro_type[1], next(b for b in branches if b != {"type": "null"}), defs, where
        )
        return
    if isinstance(avro_type, dict):
        logical = avro_type.get("logicalType")
        kind = avro_type["type"]
        if logical == "uuid":
            assert (node["type"], node["format"]) == ("string", "uuid"), where
        elif logical == "timestamp-millis":
            assert (node["type"], node["format"]) == ("string", "date-time"), where
        elif logical == "date":
            assert (node["type"], node["format"]) == ("string", "date"), where
        elif kind == "enum":
            assert node["enum"] == avro_type["symbols"], where
        elif kind == "array":
            assert node["type"] == "array", where
            assert_json_type(avro_type["items"], node["items"], defs, where + "[]")
        elif kind == "map":
            assert node["type"] == "object", where
            assert_json_type(avro_type["values"], node["additionalProperties"], defs, where + "{}")
        elif kind == "record":
            assert_record(avro_type, node, defs, where)
        else:
            assert_json_type(kind, node, defs, where)
        return
    expected = {
        "string": {"type": "string"},
        "boolean": {"type": "boolean"},
        "double": {"type": "number"},
        "float": {"type": "number"},
        "int": {"type": "integer", "minimum": INT32[0], "maximum": INT32[1]},
        "long": {"type": "integer", "minimum": INT64[0], "maximum": INT64[1]},
    }[avro_type]
    assert {k: node.get(k) for k in expected} == expected, where


def assert_record(schema: dict, node: dict, defs: dict, where: str) -> None:
    names = [f["name"] for f in schema["fields"]]
    assert list(node["properties"]) == names, where
    assert node.get("additionalProperties") is False, where
    required = [f["name"] for f in schema["fields"] if "default" not in f]
    assert node.get("required", []) == required, where
    for field in schema["fields"]:
        prop = node["properties"][field["name"]]
        if "default" in field and not isinstance(field["default"], list | dict):
            assert prop["default"] == field["default"], (where, field["name"])
        assert prop.get("description") == field.get("doc"), (where, field["name"])
        assert_json_type(field["type"], prop, defs, f"{where}.{field['name']}")


@pytest.mark.parametrize(
    "sv", list(load_registry()), ids=lambda sv: f"{sv.record_type}.v{sv.version}"
)
def test_model_matches_its_avro_schema(sv):
    model = record_model(sv.record_type, sv.version)
    assert issubclass(model, RecordModel)
    assert (model.record_type, model.avro_version) == (sv.record_type, sv.version)
    json_schema = model.model_json_schema(by_alias=True)
    assert_record(dict(sv.schema), json_schema, json_schema.get("$defs", {}), sv.record_type)
    fields = {info.alias or name: info for name, info in model.model_fields.items()}
    for field in sv.schema["fields"]:
        info = fields[field["name"]]
        assert info.is_required() == ("default" not in field)
        if "default" in field:  # list/dict defaults come from a fresh factory each time
            assert info.get_default(call_default_factory=True) == field["default"]


def test_default_model_is_the_newest_and_is_cached():
    assert record_model("learning_event") is record_model("learning_event", 2)
    assert record_model("learning_event", 1) is not record_model("learning_event", 2)
    assert record_model("learning_event").__name__ == "LearningEventV2"


def base_event() -> dict:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": "2025-03-14T10:00:01.250+01:00",
        "producer": "sdk",
        "agent_id": "CustomAI-1",
        "agent_type": "CustomAI",
        "event_type": "insight",
        "topic": "t",
        "insight": "i",
        "learning_value": 1,
        "source": "self",
        "impact_score": 0.5,
    }


def test_typed_access_defaults_and_physical_dump():
    event = record_model("learning_event").model_validate(base_event())
    assert isinstance(event.event_id, uuid.UUID)  # type: ignore[attr-defined]
    assert event.occurred_at == datetime(2025, 3, 14, 9, 0, 1, 250000, tzinfo=UTC)  # type: ignore[attr-defined]
    assert event.learning_value == 1.0 and event.tags == [] and event.cycle_id is None  # type: ignore[attr-defined]
    dumped = event.to_avro()
    assert dumped["occurred_at"] == 1741942801250 and isinstance(dumped["event_id"], str)
    assert event.model_dump(mode="json")["occurred_at"] == "2025-03-14T09:00:01.250Z"
    with pytest.raises(ValidationError):
        event.topic = "changed"  # type: ignore[misc]  # frozen


@pytest.mark.parametrize(
    ("change", "bad_field"),
    [
        ({"occurred_at": "2025-03-14T10:00:01"}, "occurred_at"),  # naive
        ({"occurred_at": 1.5}, "occurred_at"),
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"learning_value": "0.5"}, "learning_value"),  # strict: no str -> float
        ({"topic": 5}, "topic"),
        ({"topic": None}, "topic"),
        ({"schema_version": 2**31}, "schema_version"),  # int32 range
        ({"metadata": {"k": 1}}, "metadata"),
        ({"surprise": 1}, "surprise"),  # unknown field
    ],
)
def test_invalid_values_are_rejected(change, bad_field):
    with pytest.raises(ValidationError) as info:
        record_model("learning_event").model_validate({**base_event(), **change})
    assert info.value.errors()[0]["loc"][0] == bad_field


def test_timestamps_accept_epoch_millis_and_keep_millisecond_precision():
    model = record_model("learning_event")
    micro = datetime(2025, 1, 1, 12, 0, 0, 123456, tzinfo=timezone(timedelta(hours=-5)))
    event = model.model_validate({**base_event(), "occurred_at": micro})
    assert event.occurred_at == datetime(2025, 1, 1, 17, 0, 0, 123000, tzinfo=UTC)  # type: ignore[attr-defined]
    again = model.model_validate({**base_event(), "occurred_at": event.to_avro()["occurred_at"]})
    assert again.occurred_at == event.occurred_at  # type: ignore[attr-defined]


def test_field_named_like_a_basemodel_attribute_keeps_its_avro_name():
    model = record_model("inference_response")
    assert model.model_fields["json_"].alias == "json"
    record = {
        "event_id": str(uuid.uuid4()), "occurred_at": 0, "producer": "inference.local",
        "request_id": "r", "agent_id": "a", "json": '{"x": 1}', "finish_reason": "stop",
        "prompt_tokens": 1, "completion_tokens": 1, "latency_ms": 5, "model_sha256": "00",
        "route": "local", "cost_usd": 0.0, "cached": False,
        "error": {"code": "c", "message": "m"},
    }  # fmt: skip
    dumped = model.model_validate(record).to_avro()
    assert dumped["json"] == '{"x": 1}' and "json_" not in dumped
    assert dumped["error"] == {"code": "c", "message": "m"}
