"""Guardian's scheduled scans of registered code paths (issue #8; the seed scanned every 15 min).

:func:`new_finding_records` turns a tree scan's findings into ``guardian_finding`` records —
only those whose ``finding_id`` is not in ``seen``, so unchanged code is not re-published
every slot — and one ``notification`` per scan listing the new findings at or above
``alert_at``. Event ids are UUID5s of the finding id (and of the root and the new ids for the
notification): a restarted scheduler that re-publishes produces the same events.
:func:`run_scans` runs :func:`agents.guardian.repo.scan_tree` over each root right away and
then every ``interval_s`` seconds until ``stop`` is set; the caller seeds ``seen`` from the
findings topic so a restart does not alert again.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from agents.guardian.finding import Finding, Severity, severity_rank
from agents.guardian.repo import scan_tree

__all__ = ["PRODUCER", "new_finding_records", "run_scans"]

PRODUCER = "agents.guardian"
_NS = uuid.UUID("0d6b5f0e-8f7a-4f43-9d0b-6a3c2f1e7b55")
log = structlog.get_logger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def new_finding_records(findings: Sequence[Finding], seen: set[str], now_ms: int, *,
                        root_name: str, alert_at: Severity = "high"
                        ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``(finding records, notification or None)`` for the findings not in ``seen`` (which
    is not modified). Records carry the envelope (``event_id``, ``occurred_at`` ms,
    ``producer``)."""
    fresh = [f for f in findings if f.finding_id not in seen]
    records = [{"event_id": str(uuid.uuid5(_NS, f.finding_id)), "occurred_at": now_ms,
                "producer": PRODUCER, **f.to_record()} for f in fresh]
    alerting = [f for f in fresh if severity_rank(f.severity) >= severity_rank(alert_at)]
    if not alerting:
        return records, None
    digest = hashlib.sha256("|".join(sorted(f.finding_id for f in alerting)).encode())
    nid = str(uuid.uuid5(_NS, f"notification|{root_name}|{digest.hexdigest()}"))
    listed = "; ".join(f"{f.rule_id} ({f.cwe or 'no CWE'}) {f.file_path}:{f.line}"
                       for f in alerting[:20])
    more = f" and {len(alerting) - 20} more" if len(alerting) > 20 else ""
    note = {"event_id": nid, "occurred_at": now_ms, "producer": PRODUCER,
            "notification_id": nid, "recipient": "operators", "agent_id": None,
            "kind": "info", "priority": "high", "read": False, "link": None,
            "title": f"{len(alerting)} new high-severity finding(s) in {root_name}",
            "message": listed + more}
    return records, note


async def run_scans(roots: Sequence[Path], interval_s: float, emit: Emit, stop: asyncio.Event,
                    *, seen: set[str], now_ms: Callable[[], int],
                    scan: Callable[[Path], list[Finding]] = scan_tree) -> None:
    """Scan ``roots`` now and every ``interval_s`` seconds until ``stop``; publish new findings
    (adding their ids to ``seen``). A scanner failure propagates (the supervisor restarts)."""
    while not stop.is_set():
        for root in roots:
            findings = await asyncio.to_thread(scan, root)
            records, note = new_finding_records(findings, seen, now_ms(), root_name=root.name)
            for rec in records:
                await emit("guardian_finding", rec)
                seen.add(str(rec["finding_id"]))
            if note is not None:
                await emit("notification", note)
            log.info("guardian.scanned", root=str(root), findings=len(findings),
                     new=len(records))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
