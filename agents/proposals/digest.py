"""The weekly digest notification (issue #8: "people are notified weekly").

:func:`digest_queries` are the read-only SQL queries over the Postgres views (proposals,
guardian_suggestions, experiments, error_learning, notifications) for the 7 days before
``until``; :func:`digest_record` turns their results into one ``notification`` whose id is
derived from the ISO week, so running the digest twice in a week replaces the same row.
Schedule it with cron, e.g. ``0 8 * * MON cd /path/to/repo && .venv/bin/lvlup notifications
digest``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

__all__ = ["DIGEST_QUERIES", "digest_record", "week_of"]

_NS = uuid.UUID("51b0a3c4-0d8e-4a7f-a2c6-7e9f1d3b5c88")

#: name → SQL returning (label, count) rows; ``:since`` is the window's start (timestamptz)
DIGEST_QUERIES: dict[str, str] = {
    "proposals": "SELECT status, count(*) FROM proposals WHERE updated_at >= :since"
                 " GROUP BY status ORDER BY status",
    "findings": "SELECT severity, count(*) FROM guardian_suggestions WHERE occurred_at >= :since"
                " GROUP BY severity ORDER BY severity",
    "experiments": "SELECT status, count(*) FROM experiments WHERE occurred_at >= :since"
                   " GROUP BY status ORDER BY status",
    "errors": "SELECT error_class || ' in ' || coalesce(component, '?'), occurrences"
              " FROM error_learning WHERE last_seen >= :since"
              " ORDER BY occurrences DESC LIMIT 5",
    "unread": "SELECT 'unread', count(*) FROM notifications WHERE NOT read",
}


def week_of(when: datetime) -> str:
    """ISO week label, e.g. ``2026-W47``."""
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


def digest_record(results: Mapping[str, Sequence[tuple[Any, Any]]], until: datetime,
                  *, producer: str = "lvlup.cli") -> dict[str, Any]:
    """The digest ``notification`` for the week ending ``until`` (aware UTC datetime) from
    ``results`` (name of :data:`DIGEST_QUERIES` → rows)."""
    week = week_of(until)
    nid = str(uuid.uuid5(_NS, f"digest|{week}"))
    since = until - timedelta(days=7)
    lines = [f"Week {week} ({since:%Y-%m-%d} – {until:%Y-%m-%d}):"]
    for name in DIGEST_QUERIES:
        rows = results.get(name) or []
        body = ", ".join(f"{label}: {count}" for label, count in rows) or "none"
        lines.append(f"- {name}: {body}")
    return {"event_id": str(uuid.uuid5(_NS, f"digest-event|{week}|{until.isoformat()}")),
            "occurred_at": int(until.timestamp() * 1000), "producer": producer,
            "notification_id": nid, "recipient": "operators", "agent_id": None,
            "kind": "info", "priority": "low", "read": False, "link": None,
            "title": f"Weekly digest {week}", "message": "\n".join(lines)}
