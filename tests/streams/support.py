"""Test support for the toolkit and the agents built on it: a codec over a few packaged
schemas only (so a schema another change is editing cannot break these tests), and records."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from schemas.codec import Codec
from schemas.registry import SchemaRegistry, build_version

AVRO = Path(__file__).resolve().parents[2] / "schemas" / "avro"


def small_codec(*types: str) -> Codec:
    """A :class:`Codec` over every packaged version of ``types`` (default: build events and
    notifications)."""
    versions = []
    for record_type in types or ("build_event", "notification"):
        for path in sorted(AVRO.glob(f"{record_type}.v*.avsc")):
            version = int(path.name.rsplit(".v", 1)[1].split(".")[0])
            versions.append(build_version(record_type, version, json.loads(path.read_text())))
    return Codec(SchemaRegistry(versions))


def build_event(build_id: str, *, status: str = "succeeded", component: str = "lvlup",
                duration_ms: int | None = 60_000, message: str | None = None,
                occurred_at: int = 1_760_000_000_000) -> dict[str, Any]:
    """A ``build_event`` record (Avro physical values) with a fresh event id."""
    return {"event_id": str(uuid.uuid4()), "occurred_at": occurred_at, "producer": "test",
            "build_id": build_id, "agent_id": None, "component": component,
            "version": "0.1.0", "status": status, "duration_ms": duration_ms,
            "artifact": None, "sha256": None, "message": message}


def notification() -> dict[str, Any]:
    """A ``notification`` record: a type a build consumer does not serve."""
    return {"event_id": str(uuid.uuid4()), "occurred_at": 1_760_000_000_000,
            "producer": "test", "notification_id": "n-1", "recipient": "ops",
            "agent_id": None, "kind": "build", "title": "t", "message": "m",
            "priority": "normal", "read": False}
