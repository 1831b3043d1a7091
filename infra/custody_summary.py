"""The custody part of the ``lvlup run`` summary: pass rates per category × tier, the pooled
evidence each agent stands at, and every level change with its cause, since the run began.

Read from the Postgres views the sinks materialize (``custody_runs``,
``agent_level_history``); nothing here decides anything — the custody worker did.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, text

__all__ = ["CustodyProgress", "LevelChange", "custody_progress", "render_custody"]


@dataclass(frozen=True, slots=True)
class LevelChange:
    """One ``agent_level_history`` row: ``agent_id`` went ``old_level`` → ``new_level``
    for ``reason`` (``custody_passed`` / ``custody_demoted`` / …), decided by the pooled
    evidence in ``category`` at ``tier`` (``verdict``), with ``xp`` in total."""

    agent_id: str
    old_level: int
    new_level: int
    reason: str
    category: str
    tier: str
    verdict: str
    xp: int


@dataclass
class CustodyProgress:
    """Custody since a point in time. ``items``: ``{(category, tier): (passed, total)}`` item
    trials of the runs finished since then; ``evidence``: ``{(agent, category, tier):
    verdict}`` — the pooled SPRT verdict after each agent's latest run in that cell;
    ``level_changes`` in time order."""

    items: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    evidence: dict[tuple[str, str, str], str] = field(default_factory=dict)
    level_changes: list[LevelChange] = field(default_factory=list)


def custody_progress(conn: Connection, since: datetime) -> CustodyProgress:
    """Read :class:`CustodyProgress` since ``since`` (timezone-aware) from the views on
    ``conn``. Raises what SQLAlchemy raises for an unreachable database."""
    out = CustodyProgress()
    for row in conn.execute(text(
            "SELECT category, tier, sum(items_passed), sum(items_total) FROM custody_runs "
            "WHERE occurred_at >= :t GROUP BY category, tier ORDER BY category, tier"),
            {"t": since}):
        out.items[(str(row[0]), str(row[1]))] = (int(row[2] or 0), int(row[3] or 0))
    for row in conn.execute(text(
            "SELECT DISTINCT ON (agent_id, category, tier) agent_id, category, tier, "
            "coalesce(evidence_verdict, '') FROM custody_runs WHERE occurred_at >= :t "
            "ORDER BY agent_id, category, tier, occurred_at DESC"), {"t": since}):
        if row[3]:
            out.evidence[(str(row[0]), str(row[1]), str(row[2]))] = str(row[3])
    for row in conn.execute(text(
            "SELECT agent_id, coalesce(old_level, 0), new_level, coalesce(reason, ''), "
            "coalesce(category, ''), coalesce(tier, ''), coalesce(evidence_verdict, ''), "
            "coalesce(xp, 0) FROM agent_level_history WHERE occurred_at >= :t "
            "ORDER BY occurred_at, event_id"), {"t": since}):
        out.level_changes.append(LevelChange(str(row[0]), int(row[1]), int(row[2]),
                                             str(row[3]), str(row[4]), str(row[5]),
                                             str(row[6]), int(row[7])))
    return out


def render_custody(progress: CustodyProgress) -> list[str]:
    """The summary lines (stable wording: the end-to-end test reads them)."""
    lines = ["custody pass rates (items passed / tried, by category × tier):"]
    for (category, tier), (passed, total) in sorted(progress.items.items()):
        rate = f"{100 * passed / total:.0f}%" if total else "-"
        lines.append(f"  {category} × {tier}: {passed}/{total} ({rate})")
    if not progress.items:
        lines.append("  (no custody run finished)")
    passed_cells = sorted(k for k, v in progress.evidence.items() if v == "passed")
    failed_cells = sorted(k for k, v in progress.evidence.items() if v == "failed")
    lines.append(f"custody evidence: {len(passed_cells)} passed, {len(failed_cells)} failed, "
                 f"{len(progress.evidence) - len(passed_cells) - len(failed_cells)} "
                 "still collecting (agent × category × tier, SPRT)")
    lines += [f"  passed: {a} {c} × {t}" for a, c, t in passed_cells]
    lines += [f"  failed: {a} {c} × {t}" for a, c, t in failed_cells]
    lines.append(f"level changes: {len(progress.level_changes)}")
    lines += [f"  {ch.agent_id}: level {ch.old_level} → {ch.new_level} ({ch.reason}; "
              f"{ch.category} × {ch.tier} evidence {ch.verdict}; {ch.xp} XP)"
              for ch in progress.level_changes]
    return lines
