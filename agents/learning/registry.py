"""Agent registry and trusted-source state as pure reducers over command records.

Registry entries are plain dicts (they live in a Faust GlobalTable, JSON-serialised):
``{agent_id, agent_type, status: active|paused|unregistered, priority, topics}``. An agent's
learning topics travel in ``capabilities["learning_topics"]`` (a JSON list) of its register
command; built-in agents default to the seed's topics (:mod:`agents.learning.defaults`).
"""

from __future__ import annotations

import json
from typing import Any

from agents.learning.defaults import BUILTIN_TOPICS

__all__ = ["apply_command", "apply_source_change", "default_topics", "register_command"]

Entry = dict[str, Any]


def default_topics(agent_type: str) -> list[str]:
    """The seed's topics for a built-in type; custom agents learn about their own type."""
    return list(BUILTIN_TOPICS.get(agent_type, (f"{agent_type} best practices",)))


def apply_command(current: Entry | None, record: dict[str, Any]) -> Entry | None:
    """The registry entry after ``record`` (an ``agent_command``); None = no entry.

    ``register`` of a known agent updates its type/priority/topics but keeps its status
    (a replayed registration never resumes a paused agent). Commands for an unknown agent
    other than ``register`` are ignored.
    """
    action = record["action"]
    if action == "register":
        caps = record.get("capabilities") or {}
        agent_type = record.get("agent_type") or (current or {}).get("agent_type") or "custom"
        topics = json.loads(caps["learning_topics"]) if "learning_topics" in caps else (
            (current or {}).get("topics") or default_topics(agent_type))
        status = (current or {}).get("status", "active")
        return {"agent_id": record["agent_id"], "agent_type": agent_type,
                "status": "active" if status == "unregistered" else status,
                "priority": record.get("priority") if record.get("priority") is not None
                else (current or {}).get("priority", 50),
                "topics": list(topics)}
    if current is None:
        return None
    updated = dict(current)
    if action == "pause":
        updated["status"] = "paused"
    elif action == "resume" and current["status"] == "paused":
        updated["status"] = "active"
    elif action == "unregister":
        updated["status"] = "unregistered"
    elif action == "set_priority" and record.get("priority") is not None:
        updated["priority"] = record["priority"]
    return updated


def apply_source_change(current: Entry | None, record: dict[str, Any]) -> Entry | None:
    """The trusted source after a ``trusted_source_changed`` record; None = removed."""
    if record["change"] == "removed" or not record.get("trusted", True):
        return None
    return {"source_id": record["source_id"], "url": record["url"],
            "trust_score": record.get("trust_score", 1.0)}


def register_command(
    agent_id: str, agent_type: str, *, priority: int = 50, topics: list[str] | None = None,
    requested_by: str = "lvlup",
) -> dict[str, Any]:
    """An ``agent_command`` register record (without envelope fields)."""
    return {"agent_id": agent_id, "action": "register", "agent_type": agent_type,
            "priority": priority, "requested_by": requested_by, "reason": "registration",
            "capabilities": {"learning_topics": json.dumps(topics or default_topics(agent_type))}}
