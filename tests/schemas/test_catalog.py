"""Topic catalog: YAML files, the Topic enum, and their consistency with the schemas."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from schemas import resources
from schemas.catalog import (
    Authority,
    Catalog,
    Topic,
    Writer,
    dlq_topic,
    load_catalog,
    parse_topic,
)
from schemas.checks import check_catalog
from schemas.errors import CatalogError, RecordNotWritable
from schemas.registry import load_registry


def raw_topic(name: str = "lvlup.learning.events") -> dict:
    return yaml.safe_load(resources.read_text("topics", f"{name}.yaml"))


def test_topic_enum_and_yaml_files_list_the_same_topics():
    assert set(load_catalog().names) == {t.value for t in Topic}
    assert load_catalog() is load_catalog()


def test_catalog_is_consistent_with_the_schemas():
    assert check_catalog(load_catalog(), load_registry()) == []


def test_every_record_type_has_exactly_one_topic():
    catalog = load_catalog()
    for record_type in load_registry().record_types:
        spec = catalog.for_record(record_type)
        assert spec.value_schema == record_type
    assert catalog.for_record("learning_event").name == Topic.LEARNING_EVENTS
    assert catalog.topic(Topic.AGENT_METRICS).cleanup_policy == "compact"


def test_topic_settings_follow_the_design():
    for spec in load_catalog().topics:
        assert spec.replication_factor == 1
        assert spec.partitions in (3, 6)
        assert spec.owner and spec.consumers and spec.description
        assert spec.config() == {
            "cleanup.policy": spec.cleanup_policy,
            "retention.ms": str(spec.retention_ms),
        }
    commands = load_catalog().topic("lvlup.agents.commands")
    # Replayed to rebuild the registry: compaction would drop 'register' after a 'pause'.
    assert (commands.cleanup_policy, commands.retention_ms, commands.system_of_record) == (
        "delete",
        -1,
        True,
    )
    assert load_catalog().topic("lvlup.learning.events").partitions == 6


def test_dead_letter_topics_are_outside_the_catalog():
    catalog = load_catalog()
    for spec in catalog.topics:
        for group in spec.consumers:
            assert dlq_topic(group) == f"{group}.dlq"
            assert dlq_topic(group) not in catalog.names
    with pytest.raises(CatalogError, match="bad topic name"):
        parse_topic({**raw_topic(), "name": "lvlup.sinks.postgres.dlq"})


def test_unknown_lookups_raise():
    with pytest.raises(CatalogError, match="unknown topic"):
        load_catalog().topic("lvlup.nope")
    with pytest.raises(CatalogError, match="no topic carries"):
        load_catalog().for_record("nope")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"partitions": 0}, "partitions >= 1"),
        ({"partitions": True}, "'partitions' is missing or not int"),
        ({"retention_ms": -2}, "retention_ms >= -1"),
        ({"cleanup_policy": "compact,delete"}, "delete|compact"),
        ({"name": "Learning Events"}, "bad topic name"),
        ({"consumers": [1]}, "consumer group names"),
        ({"colour": "red"}, "unknown field 'colour'"),
        ({"key": None}, "'key' is missing"),
        ({"authority": None}, "'authority' is missing"),
        ({"authority": "anyone"}, "authority must be one of"),
    ],
)
def test_parse_topic_rejects_bad_definitions(change, message):
    with pytest.raises(CatalogError, match=message):
        parse_topic({**raw_topic(), **change}, "topics/x.yaml")


def test_check_catalog_finds_inconsistencies():
    catalog = load_catalog()
    changes = {
        "lvlup.learning.events": {"retention_ms": 86_400_000},  # a system of record expiring
        "lvlup.agents.metrics": {"partitions": 3},  # breaks agent_id co-partitioning
        "lvlup.agents.levels": {"cleanup_policy": "compact", "retention_ms": 1000},
    }
    broken = Catalog(
        tuple(
            dataclasses.replace(t, **changes.get(t.name, {}))
            for t in catalog.topics
            if t.value_schema != "token_usage"
        )
    )
    problems = check_catalog(broken, load_registry())
    assert "record type 'token_usage' has no topic" in problems
    assert "agent_id-keyed topics have different partition counts [3, 6]" in problems
    assert "lvlup.learning.events: retention_ms -1 exactly when system_of_record" in problems
    assert "lvlup.agents.levels: a compacted topic must have retention_ms -1" in problems
    assert len(problems) == 4
    events = catalog.topic("lvlup.learning.events")
    for key in ("cycle_id", "no_such_field", "learning_value"):  # nullable, absent, not a string
        problems = check_catalog(Catalog((dataclasses.replace(events, key=key),)), load_registry())
        assert any(f"key {key!r} is not a required string" in p for p in problems)
    unknown = Catalog((dataclasses.replace(events, value_schema="nope"),))
    assert "lvlup.learning.events: unknown value_schema 'nope'" in check_catalog(
        unknown, load_registry()
    )


def test_duplicate_topics_or_record_types_are_rejected():
    events = load_catalog().topic("lvlup.learning.events")
    with pytest.raises(CatalogError, match="more than one topic"):
        Catalog((events, dataclasses.replace(events, name="lvlup.learning.events2")))


def test_every_record_type_states_who_may_write_it():
    """Authority by record type (docs/SECURITY.md): the YAML says it for every topic, and
    only observations are open to producers; results and decisions belong to workers and
    admins."""
    catalog = load_catalog()
    for record_type in load_registry().record_types:
        raw = raw_topic(catalog.for_record(record_type).name)
        assert raw.get("authority") in {a.value for a in Authority}, record_type
    by = {a: {t.value_schema for t in catalog.topics if t.authority is a} for a in Authority}
    assert by[Authority.OBSERVATION] == {"learning_event", "build_event", "error_event"}
    assert by[Authority.ADMIN] == {"proposal_decided", "trusted_source_changed"}
    assert by[Authority.COMMAND] == {"agent_command", "learning_cycle_requested",
                                     "custody_test_requested"}
    for result in ("custody_run_result", "custody_item_result", "agent_level_changed",
                   "budget_reservation", "experiment_result", "token_usage", "command_audit"):
        assert catalog.for_record(result).authority is Authority.WORKER, result


def test_writers_hold_nested_authorities():
    catalog = load_catalog()
    catalog.check_writable("learning_event", Writer.PRODUCER)
    with pytest.raises(RecordNotWritable) as info:
        catalog.check_writable("custody_run_result", Writer.PRODUCER)
    assert (info.value.authority, info.value.owner) == ("worker", "agents.custody")
    catalog.check_writable("custody_run_result", Writer.WORKER)
    with pytest.raises(RecordNotWritable):
        catalog.check_writable("proposal_decided", Writer.WORKER)
    for record_type in load_registry().record_types:
        catalog.check_writable(record_type, Writer.ADMIN)


def test_a_prefixed_catalog_routes_every_record_type_to_its_prefixed_topic():
    catalog = load_catalog()
    scratch = catalog.prefixed("bench.x1.")
    assert catalog.prefixed("") is catalog
    assert scratch.route("learning_event") == ("bench.x1." + catalog.route("learning_event")[0],
                                               catalog.route("learning_event")[1])
    assert scratch.names == tuple(sorted("bench.x1." + n for n in catalog.names))
    spec = scratch.for_record("inference_request")
    assert spec.partitions == catalog.for_record("inference_request").partitions
    assert scratch.topic(spec.name) == spec
