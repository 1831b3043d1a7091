"""Whole-contract checks: catalog against registry, and every schema evolution step.

Pure functions over loaded objects, returning one line per problem (empty list = OK), so the
test suite, CI and a future ``lvlup`` check command share them.
"""

from __future__ import annotations

import itertools

from schemas.catalog import Catalog
from schemas.compat import check_backward_compatible
from schemas.errors import UnknownSchema
from schemas.registry import SchemaRegistry

__all__ = ["check_catalog", "check_evolution"]


def _is_required_string(avro_type: object) -> bool:
    """Whether ``avro_type`` is a non-nullable string (plain or with a logical type)."""
    if isinstance(avro_type, dict):
        return avro_type.get("type") == "string"
    return avro_type == "string"


def check_catalog(catalog: Catalog, registry: SchemaRegistry) -> list[str]:
    """Problems between the topic catalog and the schemas.

    Every topic's ``value_schema`` must be a registered record type whose every version has
    the ``key`` field as a non-nullable string; every record type must have a topic; a
    compacted topic must be kept forever (``retention_ms == -1``); a delete-policy topic is
    kept forever exactly when it is a system of record; topics keyed by ``agent_id`` share one
    partition count, so one Faust table keyed by agent can be fed from any of them
    (co-partitioning).
    """
    problems: list[str] = []
    for spec in catalog.topics:
        try:
            versions = registry.versions(spec.value_schema)
        except UnknownSchema:
            problems.append(f"{spec.name}: unknown value_schema {spec.value_schema!r}")
            continue
        for sv in versions:
            fields = {f["name"]: f["type"] for f in sv.schema["fields"]}
            if not _is_required_string(fields.get(spec.key)):
                problems.append(
                    f"{spec.name}: key {spec.key!r} is not a required string in "
                    f"{sv.record_type}.v{sv.version}"
                )
        if spec.cleanup_policy == "compact" and spec.retention_ms != -1:
            problems.append(f"{spec.name}: a compacted topic must have retention_ms -1")
        if spec.cleanup_policy == "delete" and spec.system_of_record != (spec.retention_ms == -1):
            problems.append(f"{spec.name}: retention_ms -1 exactly when system_of_record")
    carried = {spec.value_schema for spec in catalog.topics}
    problems += [
        f"record type {rt!r} has no topic" for rt in registry.record_types if rt not in carried
    ]
    agent_keyed = {spec.partitions for spec in catalog.topics if spec.key == "agent_id"}
    if len(agent_keyed) > 1:
        problems.append(
            f"agent_id-keyed topics have different partition counts {sorted(agent_keyed)}"
        )
    return problems


def check_evolution(registry: SchemaRegistry) -> list[str]:
    """Backward-compatibility problems between consecutive versions of every record type."""
    problems: list[str] = []
    for record_type in registry.record_types:
        versions = registry.versions(record_type)
        for old, new in itertools.pairwise(versions):
            for problem in check_backward_compatible(dict(old.schema), dict(new.schema)):
                problems.append(f"v{old.version}→v{new.version} {problem}")
    return problems
