"""Pure learning logic: topic choice, document excerpts, insight scoring, metric updates,
knowledge-transfer selection. No I/O; every function is deterministic."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

__all__ = [
    "AgentMetrics",
    "Insight",
    "best_excerpt",
    "learning_value",
    "pick_topics",
    "select_transfers",
    "update_metrics",
]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"ai", "the", "and", "of", "for", "to", "a", "in", "on", "with", "best", "practices"}


def pick_topics(topics: Sequence[str], cycle_number: int, k: int = 1) -> list[str]:
    """``k`` topics for cycle ``cycle_number``: a rotation, so every topic comes up in turn.

    Raises ``ValueError`` when ``topics`` is empty or ``k`` < 1.
    """
    if not topics or k < 1:
        raise ValueError("need at least one topic and k >= 1")
    start = (cycle_number * k) % len(topics)
    return [topics[(start + i) % len(topics)] for i in range(min(k, len(topics)))]


def _terms(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 2}


def best_excerpt(topic: str, text: str, size: int = 1200) -> tuple[str, float]:
    """The ``size``-character window of ``text`` sharing most words with ``topic``, and its
    relevance in [0, 1] (the share of topic terms found in the window)."""
    terms = _terms(topic) or {topic.lower()}
    if len(text) <= size:
        found = terms & _terms(text)
        return text, len(found) / len(terms)
    best, best_hits, step = 0, -1, max(1, size // 3)
    lowered = text.lower()
    for start in range(0, len(text) - size + 1, step):
        window = lowered[start:start + size]
        hits = sum(window.count(t) for t in terms)
        if hits > best_hits:
            best, best_hits = start, hits
    window = text[best:best + size]
    return window, len(terms & _terms(window)) / len(terms)


def learning_value(model_relevance: int, doc_relevance: float, insight: str) -> float:
    """Learning value in [0, 1]: 60 % the model's 0–10 relevance rating, 40 % how relevant
    the source excerpt was (keyword overlap, so a small model's self-rating cannot zero out
    real evidence), times a length factor (very short insights say little)."""
    rating = max(0, min(10, model_relevance)) / 10
    length = min(1.0, len(insight.strip()) / 80)
    return round((0.6 * rating + 0.4 * doc_relevance) * (0.5 + 0.5 * length), 4)


@dataclass(frozen=True)
class Insight:
    """One insight an agent took from a document."""

    agent_id: str
    topic: str
    text: str
    value: float
    source: str


@dataclass(frozen=True)
class AgentMetrics:
    """The seed's agent_metrics: running scores of one agent (times in epoch ms)."""

    agent_id: str
    agent_type: str
    learning_score: float = 0.0
    successes: int = 0
    failures: int = 0
    total_learning_cycles: int = 0
    last_learning_cycle: int | None = None
    last_success: int | None = None
    last_failure: int | None = None
    learning_patterns: tuple[str, ...] = field(default=())
    improvement_suggestions: tuple[str, ...] = field(default=())

    @property
    def success_rate(self) -> float:
        total = self.successes + self.failures
        return self.successes / total if total else 0.0


def update_metrics(m: AgentMetrics, *, at_ms: int, successes: int, failures: int,
                   values: Sequence[float], topics: Sequence[str]) -> AgentMetrics:
    """Fold one cycle's outcome into ``m``.

    ``learning_score`` (0–100) is an exponential moving average (α = 0.3) of the cycle's
    mean learning value × 100; patterns are the topics that produced value; a suggestion is
    made when the success rate drops below 50 %.
    """
    mean = sum(values) / len(values) if values else 0.0
    score = mean * 100 if m.total_learning_cycles == 0 else 0.7 * m.learning_score + 30 * mean
    s, f = m.successes + successes, m.failures + failures
    patterns = tuple(dict.fromkeys([*m.learning_patterns,
                                    *(t for t, v in zip(topics, values, strict=False)
                                      if v > 0)]))[-8:]
    suggestions = m.improvement_suggestions
    if s + f and s / (s + f) < 0.5:
        suggestions = ("check trusted sources: most learning attempts failed",)
    return replace(
        m, learning_score=round(score, 3), successes=s, failures=f,
        total_learning_cycles=m.total_learning_cycles + 1, last_learning_cycle=at_ms,
        last_success=at_ms if successes else m.last_success,
        last_failure=at_ms if failures else m.last_failure,
        learning_patterns=patterns, improvement_suggestions=suggestions,
    )


def select_transfers(insights: Sequence[Insight], agents: Sequence[str],
                     per_agent: int = 1) -> list[tuple[Insight, str]]:
    """Each agent's ``per_agent`` most valuable insights, routed to every *other* agent.

    Returns ``(insight, target_agent_id)`` pairs, sorted for determinism.
    """
    best: dict[str, list[Insight]] = {}
    for ins in sorted(insights, key=lambda i: (-i.value, i.agent_id, i.text)):
        kept = best.setdefault(ins.agent_id, [])
        if len(kept) < per_agent and ins.value > 0:
            kept.append(ins)
    return [(ins, target) for source in sorted(best) for ins in best[source]
            for target in sorted(agents) if target != source]
