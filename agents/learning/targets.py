"""Targeted learning (issue #20 item 5): an agent's weakest custody category sets the topic of
its next learning cycle — test, weakness, learn, retest.

Pure: :func:`fold_run` keeps each agent's recent ``custody_run_result`` records (imperium's
``runs`` table); :func:`weakness_target` ranks the categories the way custody's own
recommendations do (:func:`agents.custody.recommend.recommend`: the Wilson lower bound of
the pooled pass rate, then the Elo rating, then category order) and targets the weakest
category the agent was *tested and failed* in — an untested category ranks weak there (it
schedules a first test), but is no evidence that learning is needed. The category becomes a
learning topic through :data:`CATEGORY_TOPICS` (worded for the trusted sources: the topic
picks the excerpt by shared words, :func:`agents.learning.logic.best_excerpt`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.custody.items import Category
from agents.custody.recommend import recommend
from agents.custody.state import AgentState

__all__ = ["CATEGORY_TOPICS", "MAX_RUNS", "ROTATION", "Target", "fold_run", "weakness_target"]

#: Recent runs kept per agent (the window the weakness is judged over).
MAX_RUNS = 50
#: Why a topic from the agent's own list was chosen.
ROTATION = "rotation"

CATEGORY_TOPICS: dict[Category, str] = {
    Category.KNOWLEDGE_VERIFICATION: "documentation key concepts and definitions",
    Category.CODE_QUALITY: "Python code quality, testing and type hints",
    Category.SECURITY_AWARENESS: "security vulnerabilities and secure coding",
    Category.PERFORMANCE_OPTIMIZATION: "performance optimization, throughput and latency",
    Category.INNOVATION_CAPABILITY: "novel techniques and new features",
    Category.SELF_IMPROVEMENT: "learning from errors and improving over time",
    Category.CROSS_AI_COLLABORATION: "collaboration between agents and services",
    Category.EXPERIMENTAL_VALIDATION: "experiments, validation and reproducible tests",
}
"""The learning topic that works on each custody category."""


@dataclass(frozen=True, slots=True)
class Target:
    """A targeted topic: the weak ``category``, the ``topic`` learned for it, and the
    ``reason`` recorded on the cycle (``target: weakness <category> (<evidence>)``)."""

    category: Category
    topic: str
    reason: str


def fold_run(state: Mapping[str, Any] | None, record: Mapping[str, Any]) -> dict[str, Any]:
    """The agent's ``runs`` entry after one ``custody_run_result``: ``{"runs": [...]}``, the
    newest :data:`MAX_RUNS` runs in log order, each ``{event_id, run_id, agent_id,
    category, items_total, items_passed}``; a run id already kept is not added again (a
    redelivered record). Raises ``KeyError`` for a record without those fields."""
    runs = list((state or {}).get("runs") or [])
    if any(r["run_id"] == record["run_id"] for r in runs):
        return {"runs": runs}
    runs.append({"event_id": str(record["event_id"]), "run_id": str(record["run_id"]),
                 "agent_id": str(record["agent_id"]), "category": str(record["category"]),
                 "items_total": int(record["items_total"]),
                 "items_passed": int(record["items_passed"])})
    return {"runs": runs[-MAX_RUNS:]}


def weakness_target(agent_id: str, agent_type: str, level: int,
                    runs: Sequence[Mapping[str, Any]]) -> Target | None:
    """The topic the agent's weakest tested-and-failed category calls for (module doc), or
    None when no run of it failed an item."""
    state = AgentState(agent_id, agent_type, level=max(1, level))
    for rec in recommend(state, runs, max_categories=len(Category), item_count=1, epochs=1):
        if rec.trials and rec.passed < rec.trials:
            return Target(rec.category, CATEGORY_TOPICS[rec.category],
                          f"target: weakness {rec.category.value} ({rec.reason})")
    return None
