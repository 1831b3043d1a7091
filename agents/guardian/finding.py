"""The :class:`Finding` value and its ``guardian_finding`` record form.

A finding's id is ``sha256("tool|rule_id|file_path|line|proposal_id[|n]")[:16]`` (hex), so a
rescan of unchanged code yields the same ids and views keyed on it stay idempotent. ``n`` is
only appended for the second and later findings sharing all other parts (e.g. two ``F401`` on
one line), numbered in the scan's sorted order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "CONFIDENCES",
    "SEVERITIES",
    "Confidence",
    "Finding",
    "Severity",
    "severity_rank",
]

Severity = Literal["info", "low", "medium", "high", "critical"]
Confidence = Literal["low", "medium", "high"]

#: Symbols of the Avro ``Severity`` enum, lowest first (``guardian_finding.v1.avsc``).
SEVERITIES: tuple[Severity, ...] = ("info", "low", "medium", "high", "critical")
#: Symbols of the Avro ``Confidence`` enum, lowest first.
CONFIDENCES: tuple[Confidence, ...] = ("low", "medium", "high")


def severity_rank(severity: Severity) -> int:
    """Position of ``severity`` in :data:`SEVERITIES` (0 = info … 4 = critical)."""
    return SEVERITIES.index(severity)


@dataclass(frozen=True, slots=True)
class Finding:
    """One static-analysis finding.

    ``file_path`` is relative to the scanned root, POSIX separators; ``line`` is 1-based.
    ``occurrence`` (0-based) separates findings that share tool, rule, path and line.
    """

    tool: str
    rule_id: str
    file_path: str
    line: int
    severity: Severity
    confidence: Confidence
    message: str
    cwe: str | None = None
    proposal_id: str | None = None
    agent_id: str | None = None
    occurrence: int = 0

    @property
    def finding_id(self) -> str:
        """Deterministic id: 16 hex chars of a sha256 (see the module docstring)."""
        parts = [self.tool, self.rule_id, self.file_path, str(self.line), self.proposal_id or ""]
        if self.occurrence:
            parts.append(str(self.occurrence))
        return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]

    def sort_key(self) -> tuple[str, int, str, str, str]:
        """Order used for stable output: path, line, tool, rule, message."""
        return (self.file_path, self.line, self.tool, self.rule_id, self.message)

    def to_record(self) -> dict[str, Any]:
        """The ``guardian_finding`` body, without the envelope.

        Keys are exactly the schema's non-envelope fields; the caller adds ``event_id`` (UUID
        string), ``occurred_at`` (epoch milliseconds) and ``producer``.
        """
        return {
            "finding_id": self.finding_id,
            "proposal_id": self.proposal_id,
            "agent_id": self.agent_id,
            "rule_id": self.rule_id,
            "cwe": self.cwe,
            "severity": self.severity,
            "confidence": self.confidence,
            "file_path": self.file_path,
            "line": self.line,
            "message": self.message,
            "tool": self.tool,
        }
