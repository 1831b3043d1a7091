"""Turn a proposal's findings into the body of a ``proposal_scanned`` record."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from agents.guardian.finding import CONFIDENCES, Confidence, Finding, Severity, severity_rank
from agents.guardian.scan import TOOLS

__all__ = ["VerdictPolicy", "scan_verdict"]


@dataclass(frozen=True, slots=True)
class VerdictPolicy:
    """When a scan fails a proposal.

    A finding is *blocking* when its severity is at least ``fail_at`` and its confidence at
    least ``min_confidence``, or its ``rule_id`` is in ``always_block`` (whatever its level).
    The proposal fails if it has any blocking finding, or more than ``max_findings`` findings
    in all (``None`` = no limit). The default fails on any high or critical finding.
    """

    fail_at: Severity = "high"
    min_confidence: Confidence = "low"
    always_block: frozenset[str] = frozenset()
    max_findings: int | None = None

    def blocks(self, finding: Finding) -> bool:
        """Whether ``finding`` alone fails the proposal."""
        if finding.rule_id in self.always_block:
            return True
        return severity_rank(finding.severity) >= severity_rank(self.fail_at) and (
            CONFIDENCES.index(finding.confidence) >= CONFIDENCES.index(self.min_confidence)
        )


def scan_verdict(
    findings: Iterable[Finding],
    policy: VerdictPolicy | None = None,
    *,
    tools: Sequence[str] = TOOLS,
) -> dict[str, Any]:
    """The verdict fields of a ``proposal_scanned`` record.

    Returns ``{"status", "passed", "finding_count", "max_severity", "tools"}``: ``status`` is
    ``"scanned"`` when passed and ``"rejected"`` otherwise, ``max_severity`` is ``None`` when
    there are no findings, ``tools`` lists the scanners run (default: all of :data:`TOOLS`).
    The caller adds the envelope, ``proposal_id`` and ``agent_id``.
    """
    policy = policy or VerdictPolicy()
    found = list(findings)
    blocked = any(policy.blocks(f) for f in found)
    too_many = policy.max_findings is not None and len(found) > policy.max_findings
    max_severity = max((f.severity for f in found), key=severity_rank, default=None)
    passed = not (blocked or too_many)
    return {
        "status": "scanned" if passed else "rejected",
        "passed": passed,
        "finding_count": len(found),
        "max_severity": max_severity,
        "tools": list(tools),
    }
