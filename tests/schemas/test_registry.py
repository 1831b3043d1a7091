"""The packaged schemas: what every record carries, and the registry's own rules."""

from __future__ import annotations

import copy
import json
import re

import pytest

from schemas.errors import SchemaError, UnknownSchema
from schemas.registry import NAMESPACE, SchemaRegistry, build_version, load_registry

RECORD_TYPES = {
    "agent_command", "learning_event", "learning_cycle_started", "learning_cycle_completed",
    "learning_cycle_requested",
    "internet_learning_result", "knowledge_transfer", "trusted_source_changed",
    "custody_test_requested", "custody_item_result", "custody_run_result", "agent_level_changed",
    "custody_regression",
    "proposal_submitted", "proposal_gated", "proposal_scanned", "proposal_experimented",
    "proposal_decided", "guardian_finding", "experiment_requested", "experiment_result",
    "build_event", "conquest_recommendation", "inference_request", "inference_response",
    "inference_chunk",
    "token_usage", "notification", "error_event", "agent_metrics", "command_audit",
    "budget_reservation",
}  # fmt: skip
SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


def named_types(avro_type, found):
    """Collect every named type definition (enum, record) under ``avro_type``."""
    if isinstance(avro_type, list):
        for branch in avro_type:
            named_types(branch, found)
    elif isinstance(avro_type, dict):
        if avro_type.get("type") in {"enum", "record"} and "name" in avro_type:
            found.append(avro_type)
        for key in ("type", "items", "values"):
            if key in avro_type and not isinstance(avro_type[key], str):
                named_types(avro_type[key], found)
        for field in avro_type.get("fields", []):
            named_types(field["type"], found)
    return found


def test_every_record_type_is_registered_and_at_least_two_have_a_v2():
    registry = load_registry()
    assert set(registry.record_types) == RECORD_TYPES
    evolved = [rt for rt in registry.record_types if registry.latest(rt).version >= 2]
    assert len(evolved) >= 2


def test_envelope_and_agent_id():
    for sv in load_registry():
        fields = {f["name"]: f for f in sv.schema["fields"]}
        assert fields["event_id"]["type"] == {"type": "string", "logicalType": "uuid"}
        assert fields["occurred_at"]["type"] == {"type": "long", "logicalType": "timestamp-millis"}
        assert fields["producer"]["type"] == "string"
        assert fields["schema_version"] == {
            **fields["schema_version"],
            "type": "int",
            "default": sv.version,
        }
        if "agent_id" in fields:
            assert fields["agent_id"]["type"] in ("string", ["null", "string"])
        assert sv.schema["namespace"] == NAMESPACE


def test_agent_records_carry_agent_id_and_agent_type_is_a_free_string():
    registry = load_registry()
    without = {"learning_cycle_started", "learning_cycle_completed", "trusted_source_changed",
               "learning_cycle_requested"}
    for rt in RECORD_TYPES - without:
        names = registry.latest(rt).field_names
        assert "agent_id" in names, rt
    for sv in registry:
        for field in sv.schema["fields"]:
            if field["name"] == "agent_type":
                assert field["type"] in ("string", ["null", "string"]), sv


def test_field_names_are_snake_case_documented_and_optional_fields_default_to_null():
    for sv in load_registry():
        assert sv.schema.get("doc")
        for field in sv.schema["fields"]:
            assert SNAKE.match(field["name"]), (sv, field["name"])
            assert field.get("doc"), (sv, field["name"])
            if isinstance(field["type"], list):
                assert field["type"][0] == "null" and field["default"] is None, (sv, field)


def test_enums_have_the_designed_symbols_and_shared_enums_do_not_drift():
    definitions: dict[str, list[tuple[str, ...]]] = {}
    for sv in load_registry():
        for named in named_types(dict(sv.schema), []):
            if named["type"] == "enum":
                definitions.setdefault(named["name"], []).append(tuple(named["symbols"]))
    assert set(definitions["CustodyCategory"]) == {(
        "knowledge_verification", "code_quality", "security_awareness",
        "performance_optimization", "innovation_capability", "self_improvement",
        "cross_ai_collaboration", "experimental_validation",
    )}  # fmt: skip
    assert set(definitions["CustodyTier"]) == {
        ("basic", "intermediate", "advanced", "expert", "master", "legendary")
    }
    assert {
        "submitted",
        "gated",
        "rejected",
        "scanned",
        "experimented",
        "approved",
        "declined",
    } <= set(definitions["ProposalStatus"][0])
    assert set(definitions["Severity"]) == {("info", "low", "medium", "high", "critical")}
    latest = load_registry().latest
    for name, variants in definitions.items():
        if name == "NotificationKind":  # evolves: v2 added a symbol
            kind = next(f for f in latest("notification").schema["fields"] if f["name"] == "kind")
            assert set(variants[0]) <= set(kind["type"]["symbols"])
            continue
        assert len(set(variants)) == 1, f"enum {name} differs between schemas: {set(variants)}"


def test_lookups_and_fingerprints():
    registry = load_registry()
    assert load_registry() is registry  # cached: parsed once per process
    v1, v2 = registry.versions("learning_event")
    assert (v1.version, v2.version) == (1, 2)
    assert registry.latest("learning_event") is v2
    assert registry.by_fingerprint(v1.fingerprint) is v1
    assert registry.find_fingerprint(b"\x00" * 8) is None
    assert len({sv.fingerprint for sv in registry}) == len(registry)
    with pytest.raises(UnknownSchema):
        registry.latest("no_such_type")
    with pytest.raises(UnknownSchema):
        registry.get("learning_event", 9)
    with pytest.raises(UnknownSchema):
        registry.by_fingerprint(b"\x00" * 8)


def raw(record_type="learning_event", version=1):
    return json.loads(json.dumps(load_registry().get(record_type, version).schema))


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(name="other"), "record named"),
        (lambda s: s.update(namespace="com.example"), "namespace"),
        (lambda s: s["fields"].pop(0), "envelope field 0"),
        (lambda s: s["fields"][2].update(type="int"), "'producer' must have type"),
        (lambda s: s["fields"][3].update(default=7), "must default to 1"),
        (lambda s: s["fields"].append({"name": "x", "type": "nope"}), "invalid Avro schema"),
        (lambda s: s["fields"].append({"name": "type", "type": "string"}), "named 'type'"),
        (
            lambda s: s["fields"].append(
                {
                    "name": "xs",
                    "type": {
                        "type": "array",
                        "items": {"type": "long", "logicalType": "timestamp-millis"},
                    },
                }
            ),
            "logical types only on top-level fields",
        ),
    ],
)
def test_build_version_rejects_broken_schemas(mutate, message):
    schema = raw()
    mutate(schema)
    with pytest.raises(SchemaError, match=message):
        build_version("learning_event", 1, schema)


def test_registry_rejects_version_gaps_and_duplicate_fingerprints():
    v1 = build_version("learning_event", 1, raw())
    v2 = build_version("learning_event", 2, raw(version=2))
    assert [sv.version for sv in SchemaRegistry([v2, v1])] == [1, 2]
    with pytest.raises(SchemaError, match="version 2 found, 1 expected"):
        SchemaRegistry([v2])
    same_as_v1 = copy.deepcopy(raw())
    same_as_v1["fields"][3]["default"] = 2  # defaults are not in the canonical form
    with pytest.raises(SchemaError, match="same fingerprint"):
        SchemaRegistry([v1, build_version("learning_event", 2, same_as_v1)])
