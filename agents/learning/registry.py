"""Agent registry and trusted-source state as pure reducers over command records.

Registry entries are plain dicts (they live in a Faust GlobalTable, JSON-serialised):
``{agent_id, agent_type, status: active|paused|unregistered, priority, topics, topics_at}``.
An agent's learning topics travel in ``capabilities["learning_topics"]`` (a JSON list) of its
register command; built-in agents default to the seed's topics
(:mod:`agents.learning.defaults`). They can be changed later by a settings command (a
``learning_cycle_requested`` v2 with ``agent_topics``, see :func:`parse_settings`): the
newer of the two (by ``occurred_at``) is what the agent learns (:func:`effective_topics`).

Demo agents (issue #20 item 9): the sample stream of ``lvlup run --demo`` registers agents
whose ids start with :data:`DEMO_AGENT_PREFIX` in records whose ``producer`` is
:data:`DEMO_PRODUCER`. Their entries carry ``demo: true`` (:func:`is_demo`) and
:func:`active_agents` never returns them: they fill the views for a look around and never
join the real agents' learning cycles (nor, through them, transfers, memory or retests).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.learning.cycle import AgentInfo
from agents.learning.defaults import BUILTIN_TOPICS
from agents.learning.sources import check_source_url
from agents.learning.targets import weakness_target

__all__ = [
    "DEMO_AGENT_PREFIX",
    "DEMO_PRODUCER",
    "SettingsChange",
    "active_agents",
    "apply_command",
    "apply_source_change",
    "clean_topics",
    "default_topics",
    "effective_topics",
    "is_demo",
    "parse_settings",
    "register_command",
]

Entry = dict[str, Any]
MAX_TOPICS = 16
MAX_TOPIC_CHARS = 200
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 7 * 24 * 3600.0
#: The ``producer`` of every record of the demo sample (``infra/sample/events.jsonl``).
DEMO_PRODUCER = "lvlup.demo"
#: The id prefix of the demo sample's agents (``demo-imperium-1``, …).
DEMO_AGENT_PREFIX = "demo-"


def is_demo(agent_id: str, producer: str | None = None) -> bool:
    """Whether ``agent_id`` (or a record written by ``producer``) belongs to the demo sample
    (module doc)."""
    return agent_id.startswith(DEMO_AGENT_PREFIX) or producer == DEMO_PRODUCER


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
        if "learning_topics" in caps:
            topics = clean_topics(json.loads(caps["learning_topics"]))
            topics_at = int(record.get("occurred_at") or 0)
        else:
            topics = (current or {}).get("topics") or default_topics(agent_type)
            topics_at = int((current or {}).get("topics_at") or 0)
        status = (current or {}).get("status", "active")
        demo = bool((current or {}).get("demo")) or is_demo(record["agent_id"],
                                                            record.get("producer"))
        return {"agent_id": record["agent_id"], "agent_type": agent_type, "demo": demo,
                "status": "active" if status == "unregistered" else status,
                "priority": record.get("priority") if record.get("priority") is not None
                else (current or {}).get("priority", 50),
                "topics": list(topics), "topics_at": topics_at}
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
    """The trusted source after a ``trusted_source_changed`` record; None = removed.

    Raises ``ValueError`` (the record goes to the DLQ) when an added source's URL could never
    be a trusted source (:func:`agents.learning.sources.check_source_url`: not http(s), file
    or package, credentials in the URL, ``/proc``…)."""
    if record["change"] == "removed" or not record.get("trusted", True):
        return None
    check_source_url(str(record["url"]))
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


def clean_topics(topics: object) -> list[str]:
    """``topics`` stripped, without blanks or repeats, in order.

    Raises ``ValueError`` unless it is a list of 1..16 strings of at most 200 characters.
    """
    if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
        raise ValueError("learning topics must be a list of strings")
    cleaned = list(dict.fromkeys(t.strip() for t in topics if t.strip()))
    if not 1 <= len(cleaned) <= MAX_TOPICS:
        raise ValueError(f"an agent needs 1..{MAX_TOPICS} learning topics, got {len(cleaned)}")
    too_long = [t for t in cleaned if len(t) > MAX_TOPIC_CHARS]
    if too_long:
        raise ValueError(f"learning topic longer than {MAX_TOPIC_CHARS} characters: "
                         f"{too_long[0][:40]!r}…")
    return cleaned


@dataclass(frozen=True)
class SettingsChange:
    """What one settings command changes: the scheduled interval (seconds; None =
    unchanged) and learning topics per agent id, stamped with the command's time (epoch
    ms)."""

    interval_s: float | None = None
    agent_topics: dict[str, list[str]] = field(default_factory=dict)
    at_ms: int = 0


def parse_settings(record: Mapping[str, Any], known_agents: Collection[str]
                   ) -> SettingsChange:
    """The settings a ``learning_cycle_requested`` record carries (v1 records carry none).

    All or nothing: raises ``ValueError`` for an interval outside 1 s .. 7 days, topics for
    an agent the registry does not know, or a topic list :func:`clean_topics` refuses.
    """
    interval = record.get("interval_s")
    if interval is not None and not MIN_INTERVAL_S <= float(interval) <= MAX_INTERVAL_S:
        raise ValueError(f"interval_s must be {MIN_INTERVAL_S:.0f} .. {MAX_INTERVAL_S:.0f} s,"
                         f" got {interval}")
    topics: dict[str, list[str]] = {}
    for agent_id, wanted in sorted((record.get("agent_topics") or {}).items()):
        if agent_id not in known_agents:
            raise ValueError(f"learning topics for unknown agent {agent_id!r}")
        topics[agent_id] = clean_topics(list(wanted))
    return SettingsChange(None if interval is None else float(interval), topics,
                            int(record.get("occurred_at") or 0))


def effective_topics(entry: Mapping[str, Any], override: Mapping[str, Any] | None
                     ) -> tuple[str, ...]:
    """The topics an agent learns: its registration's, or a settings command's
    (``override`` = ``{"topics": [...], "at": epoch ms}``) when that is newer."""
    if override and int(override.get("at") or 0) >= int(entry.get("topics_at") or 0):
        return tuple(override["topics"])
    return tuple(entry["topics"])


def active_agents(entries: Iterable[Entry | None], *, overrides: Mapping[str, Any],
                  levels: Mapping[str, Any], only: Collection[str] | None = None,
                  runs: Mapping[str, Any] | None = None) -> list[AgentInfo]:
    """The agents a cycle takes: registry ``entries`` whose status is ``active`` (all, or
    the ids in ``only``), with their :func:`effective_topics` (``overrides``: key
    ``topics:<agent_id>``) and custody level (``levels``: agent id → ``{xp, level,
    prestige}``), and the custody weakness each should learn about (``runs``: agent id →
    :func:`~agents.learning.targets.fold_run` entry; :func:`~agents.learning.targets.
    weakness_target`). Paused and unregistered agents are left out, and so are demo agents
    (:func:`is_demo`: their entry's flag, or their id for entries stored before the flag)."""
    out = []
    for e in entries:
        if not e or e["status"] != "active" or (only and e["agent_id"] not in only):
            continue
        if e.get("demo") or is_demo(e["agent_id"]):
            continue
        lvl = levels.get(e["agent_id"]) or {}
        level = int(lvl.get("level", 1))
        recent = ((runs or {}).get(e["agent_id"]) or {}).get("runs") or []
        out.append(AgentInfo(
            e["agent_id"], e["agent_type"], int(e["priority"] or 0),
            effective_topics(e, overrides.get(f"topics:{e['agent_id']}")),
            xp=int(lvl.get("xp", 0)), level=level, prestige=int(lvl.get("prestige", 0)),
            target=weakness_target(e["agent_id"], e["agent_type"], level, recent)))
    return out
