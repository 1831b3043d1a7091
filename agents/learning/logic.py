"""Pure learning logic: topic choice, document excerpts, insight scoring, metric updates,
knowledge-transfer selection, the schedule. No I/O; every function is deterministic."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = [
    "AgentMetrics",
    "Insight",
    "best_excerpt",
    "due_in",
    "learning_value",
    "pick_topics",
    "select_transfers",
    "suggestions",
    "update_metrics",
]

_WORD = re.compile(r"[a-z0-9]+")
_STOP = {"ai", "the", "and", "of", "for", "to", "a", "in", "on", "with", "best", "practices"}
MAX_PATTERNS = 8
MAX_SUGGESTIONS = 5


def pick_topics(topics: Sequence[str], cycle_number: int, k: int = 1) -> list[str]:
    """``k`` topics for an agent's ``cycle_number``-th cycle (0-based): a rotation, so every
    topic comes up in turn.

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
    """The seed's agent_metrics: running scores of one agent (times in epoch ms).

    ``successes``/``failures`` count learning attempts (one per topic per cycle): an
    attempt succeeds when it produced an insight.
    """

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
        """Successful attempts / all attempts, 0.0 before the first attempt."""
        total = self.successes + self.failures
        return self.successes / total if total else 0.0

    @property
    def failure_rate(self) -> float:
        """Failed attempts / all attempts, 0.0 before the first attempt."""
        total = self.successes + self.failures
        return self.failures / total if total else 0.0

    def to_state(self) -> dict[str, Any]:
        """A JSON-ready dict (the Faust table's value); :meth:`from_state` reads it back."""
        state = asdict(self)
        state["learning_patterns"] = list(self.learning_patterns)
        state["improvement_suggestions"] = list(self.improvement_suggestions)
        return state

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> AgentMetrics:
        """The metrics stored by :meth:`to_state` (unknown keys are ignored)."""
        known = {f: state[f] for f in cls.__dataclass_fields__ if f in state}
        known["learning_patterns"] = tuple(state.get("learning_patterns") or ())
        known["improvement_suggestions"] = tuple(state.get("improvement_suggestions") or ())
        return cls(**known)


def suggestions(m: AgentMetrics, *, values: Sequence[float], topics_without_value: Sequence[str],
                failed_sources: Sequence[str]) -> tuple[str, ...]:
    """Improvement suggestions after a cycle (at most five, most important first).

    ``m`` already includes the cycle. Rules: a success rate below 50 % over all attempts;
    each trusted source that failed this cycle; each topic that gave no usable insight this
    cycle; a mean learning value below 0.3 this cycle.
    """
    out: list[str] = []
    if m.successes + m.failures and m.success_rate < 0.5:
        out.append("most learning attempts failed: check the model and the trusted sources")
    out += [f"trusted source {url} failed: check or remove it" for url in failed_sources]
    out += [f"no usable insight on '{t}': add a trusted source that covers it"
            for t in topics_without_value]
    if values and sum(values) / len(values) < 0.3:
        out.append("insights scored low: add sources closer to the agent's topics")
    return tuple(dict.fromkeys(out))[:MAX_SUGGESTIONS]


def update_metrics(m: AgentMetrics, *, at_ms: int, insights: Sequence[Insight],
                   failed_topics: Sequence[str], failed_sources: Sequence[str] = ()
                   ) -> AgentMetrics:
    """Fold one cycle's outcome for one agent into ``m``.

    ``insights`` are the agent's insights this cycle (one per successful attempt),
    ``failed_topics`` its attempts without one, ``failed_sources`` the trusted sources that
    could not be read this cycle. ``learning_score`` (0–100) is an exponential moving
    average (α = 0.3) of the cycle's mean learning value × 100, failed attempts counting as
    0 (the first cycle sets it); patterns are the topics that produced value, newest last (at
    most eight); suggestions come from :func:`suggestions`.
    """
    values = [i.value for i in insights]
    scored = [*values, *(0.0 for _ in failed_topics)]
    mean = sum(scored) / len(scored) if scored else 0.0
    score = mean * 100 if m.total_learning_cycles == 0 else 0.7 * m.learning_score + 30 * mean
    valued = [i.topic for i in insights if i.value > 0]
    patterns = tuple(dict.fromkeys([*(p for p in m.learning_patterns if p not in valued),
                                    *valued]))[-MAX_PATTERNS:]
    updated = replace(
        m, learning_score=round(score, 3), successes=m.successes + len(insights),
        failures=m.failures + len(failed_topics),
        total_learning_cycles=m.total_learning_cycles + 1, last_learning_cycle=at_ms,
        last_success=at_ms if insights else m.last_success,
        last_failure=at_ms if failed_topics else m.last_failure,
        learning_patterns=patterns)
    without = [*failed_topics, *(i.topic for i in insights if i.value <= 0)]
    return replace(updated, improvement_suggestions=suggestions(
        updated, values=values, topics_without_value=without, failed_sources=failed_sources))


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


def due_in(last_start_s: float, interval_s: float, now_s: float) -> float:
    """Seconds until the next scheduled cycle (≤ 0: due now), for a schedule whose last
    cycle started at ``last_start_s`` (monotonic seconds). A changed ``interval_s`` applies
    at once: shortening it can make a cycle due immediately."""
    return last_start_s + interval_s - now_s
