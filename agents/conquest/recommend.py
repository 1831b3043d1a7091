"""``build_event`` → ``conquest_recommendation`` (+ a ``build`` notification), pure.

Only ``failed`` builds yield a recommendation; its ``evidence`` carries the matched pattern,
the matched log line, the build id, component, version and duration. Ids are deterministic
(UUID5 of the build event's id), so a redelivered build event yields the same records.
"""

from __future__ import annotations

from typing import Any

from agents.conquest.patterns import Match, classify
from agents.proposals.records import event_id, notification_record
from schemas.records import BuildEventRecord, ConquestRecommendationRecord

__all__ = ["CONQUEST_AGENT", "PRODUCER", "recommend"]

PRODUCER = "agents.conquest"
#: ``agent_id`` of recommendations when the build names no agent.
CONQUEST_AGENT = "conquest-1"


def recommend(build: BuildEventRecord, now_ms: int
              ) -> tuple[Match, ConquestRecommendationRecord, dict[str, Any]] | None:
    """For a failed ``build`` record: ``(match, recommendation, notification)``; else None."""
    if str(build["status"]) != "failed":
        return None
    match = classify(build.get("message"))
    rec_id = event_id("conquest", str(build["event_id"]))
    evidence: dict[str, str] = {"pattern": match.pattern.id, "build_id": str(build["build_id"]),
                "component": str(build["component"]), "version": str(build["version"])}
    if match.line is not None:
        evidence["matched_line"] = match.line
    if build.get("duration_ms") is not None:
        evidence["duration_ms"] = str(build["duration_ms"])
    rationale = (f"Build {build['build_id']} failed with pattern {match.pattern.id}: "
                 f"{match.pattern.advice}")
    recommendation: ConquestRecommendationRecord = {
        "event_id": rec_id, "occurred_at": now_ms, "producer": PRODUCER,
        "recommendation_id": rec_id, "agent_id": build.get("agent_id") or CONQUEST_AGENT,
        "kind": "deployment", "target": str(build["component"]),
        "title": f"{match.pattern.title} ({build['component']} {build['version']})",
        "rationale": rationale,
        "expected_gain_pct": None, "priority": match.pattern.priority, "evidence": evidence}
    note = notification_record(
        f"conquest|{build['event_id']}", agent_id=build.get("agent_id"), kind="build",
        priority="high" if match.pattern.priority >= 60 else "normal",
        title=f"Build {build['build_id']} of {build['component']} failed: {match.pattern.id}",
        message=rationale, now_ms=now_ms, producer=PRODUCER)
    return match, recommendation, note
