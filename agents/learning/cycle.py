"""One learning cycle (the seed's Imperium ``run_learning_cycle``), with every collaborator
injected so it runs the same in a Faust worker and in a test.

1. ``learning_cycle_started`` with the participants (active agents by priority) and their
   topics (each agent's rotation, :func:`~agents.learning.logic.pick_topics`; an agent with
   a custody weakness learns the topic it calls for first, :mod:`agents.learning.targets`),
   each with why it was chosen (``agent_topics``: ``rotation`` or ``target: weakness …``).
2. Every trusted source is read once, all at once. A source that fails (timeout, HTTP
   error, too large) becomes an ``error_event`` and the cycle goes on without it.
3. For each agent, by priority, at most ``max_concurrent`` at a time, for each of its
   topics: the most relevant excerpt of the documents, an insight from the model as JSON
   (schema-constrained, fails closed), its learning value; an ``internet_learning_result``
   (with the document's section passages most relevant to the topic, which the memory view
   keeps — :mod:`agents.knowledge.passages`) and a ``learning_event``. A model failure
   becomes an ``error_event`` and a failed attempt.
4. ``learning_cycle_completed``: ``completed`` (nothing failed), ``partial`` (something was
   learned but a source or an attempt failed, or the cycle timed out — ``reason`` says
   which) or ``failed`` (nothing learned); totals and the best insights.
5. Per agent, the metrics folded with this cycle (stored in ``metrics``, then an
   ``agent_metrics`` snapshot).

Knowledge transfers are judged after the cycle, by the caller
(:func:`agents.learning.transfers.transfer_knowledge` on ``CycleOutcome.insights``).

The whole of 2–3 runs under ``timeout_s`` (the seed's ``LEARNING_TIMEOUT``); nothing here
raises for a source or model failure — only the injected ``emit`` can raise.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.knowledge.passages import chunk_sections, rank_passages
from agents.learning.logic import (
    AgentMetrics,
    Insight,
    best_excerpt,
    learning_value,
    pick_topics,
    update_metrics,
)
from agents.learning.sources import Document, SourceFailed
from agents.learning.targets import ROTATION, Target
from inference.client import InferenceFailed, InferenceTimeout

__all__ = ["AgentInfo", "CycleConfig", "CycleDeps", "CycleOutcome", "INSIGHT_SCHEMA",
           "InferFailed", "MODEL_FAILURES", "parse_answer", "run_cycle"]

INSIGHT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "insight": {"type": "string", "minLength": 10, "maxLength": 120},
        "relevance": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["insight", "relevance"],
}


@dataclass(frozen=True)
class AgentInfo:
    """An active agent as the registry knows it, with its level (from custody) for the
    metrics snapshot and its custody weakness ``target`` (None: none found)."""

    agent_id: str
    agent_type: str
    priority: int
    topics: tuple[str, ...]
    xp: int = 0
    level: int = 1
    prestige: int = 0
    target: Target | None = None


@dataclass(frozen=True)
class CycleConfig:
    """Seed settings: ``MAX_CONCURRENT_LEARNING``, ``LEARNING_TIMEOUT`` (seconds); topics per
    agent per cycle; the model's answer limit (tokens)."""

    max_concurrent: int = 3
    timeout_s: float = 300.0
    topics_per_agent: int = 1
    max_tokens: int = 96
    #: source passages (section chunks, most relevant to the topic first) per learning
    #: result; they enter the agent's memory (``agent_memory``). The agent keeps the whole
    #: document it learned from (the offline READMEs have 54 sections on average, 708 in all),
    #: so a retest of what it read finds it in memory; the cap bounds one record (~700
    #: characters a section: ≤ ~85 KB, well under Kafka's 1 MB message limit).
    passages_per_result: int = 120


class InferFailed(RuntimeError):
    """The model did not give a usable answer (carries the error code)."""


#: What ``CycleDeps.infer`` may raise for a model or inference failure: recorded as an error
#: event and a failed topic. Anything else is a bug and ends the cycle (and the worker).
MODEL_FAILURES: tuple[type[Exception], ...] = (InferFailed, InferenceTimeout, InferenceFailed)


def _fields(answer: dict[str, Any]) -> tuple[str, int]:
    """(insight text, relevance 0..10) of a parsed answer; raises :class:`InferFailed`."""
    try:
        return str(answer["insight"]).strip(), int(answer["relevance"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InferFailed(f"answer lacks a usable insight/relevance: {exc!r}") from exc


@dataclass
class CycleDeps:
    """What a cycle needs from the outside.

    ``infer(agent_id, prompt, schema, max_tokens, seed)`` returns the parsed JSON answer or
    raises (:class:`InferFailed`, the client's own errors); ``emit(record_type, record)``
    publishes; ``fetch(url)`` reads a trusted source or raises :class:`SourceFailed`;
    ``now_ms()`` is the clock.
    """

    infer: Callable[[str, str, dict[str, Any], int, int], Awaitable[dict[str, Any]]]
    emit: Callable[[str, dict[str, Any]], Awaitable[None]]
    fetch: Callable[[str], Awaitable[Document]]
    now_ms: Callable[[], int]


@dataclass
class CycleOutcome:
    """Totals of a finished cycle. ``failed_sources`` maps a source to why it failed;
    ``failed_topics`` an agent to its attempts without an insight."""

    cycle_id: str
    status: str
    insights: list[Insight] = field(default_factory=list)
    failed_sources: dict[str, str] = field(default_factory=dict)
    failed_topics: dict[str, list[str]] = field(default_factory=dict)
    reason: str | None = None

    @property
    def successes(self) -> int:
        """Attempts that gave an insight."""
        return len(self.insights)

    @property
    def failures(self) -> int:
        """Failed attempts plus sources that could not be read."""
        return sum(len(t) for t in self.failed_topics.values()) + len(self.failed_sources)

    @property
    def total_value(self) -> float:
        """Sum of the insights' learning values."""
        return round(sum(i.value for i in self.insights), 4)


_EXAMPLES = (
    ("Python lists are mutable sequences. Items can be replaced, appended or removed in place, "
     "and a list keeps the order in which items were added.", "Python lists",
     "Lists are mutable, so items can be changed in place and keep their order.", 9),
    ("A hash index maps each key to a bucket, so an equality lookup reads one bucket instead of "
     "scanning the table. Hash indexes do not help range queries.", "database indexes",
     "A hash index finds equal keys in one bucket but cannot serve range queries.", 8),
)
EXCERPT_CHARS = 800


def _prompt(topic: str, excerpt: str) -> str:
    """A two-shot prompt. Gemma 3 270M held to the JSON grammar without an example of the
    answer degenerated (digit runs, answers cut at the token limit); with one example it
    sometimes answered with the example itself."""
    shots = "".join(
        f"Documentation: {doc}\nTopic: {shot_topic}\n"
        f'Answer: {{"insight": "{insight}", "relevance": {rating}}}\n\n'
        for doc, shot_topic, insight, rating in _EXAMPLES)
    return ("Read the documentation and answer with one insight: a fact the documentation "
            "states about the topic, and how relevant the documentation is to the topic "
            f"(0 to 10).\n\n{shots}Documentation: {excerpt}\nTopic: {topic}\nAnswer:")


def _echoes_example(insight: str) -> bool:
    """Whether the model answered with one of the prompt's examples (a small model
    sometimes does)."""
    def norm(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    return any(norm(example[2])[:30] in norm(insight) for example in _EXAMPLES)


def _seed(cycle_id: str, agent_id: str, topic: str) -> int:
    return int(hashlib.sha256(f"{cycle_id}:{agent_id}:{topic}".encode()).hexdigest()[:8], 16)


async def _error(deps: CycleDeps, cycle_id: str, *, agent_id: str | None, component: str,
                 error_class: str, message: str, context: dict[str, str]) -> None:
    """An ``error_event``: the fingerprint groups equal failures (class + what failed)."""
    what = context.get("source") or context.get("topic") or ""
    fingerprint = hashlib.sha256(f"{component}:{error_class}:{what}".encode()).hexdigest()
    error_key = hashlib.sha256(f"{agent_id}:{what}".encode()).hexdigest()[:10]
    await deps.emit("error_event", {
        "occurred_at": deps.now_ms(), "error_id": f"err-{cycle_id}-{error_key}",
        "agent_id": agent_id, "component": component, "error_class": error_class,
        "message": message[:500], "fingerprint": fingerprint[:16], "severity": "medium",
        "context": {"cycle_id": cycle_id, **context}})


async def _read_sources(sources: Sequence[str], *, cycle_id: str, deps: CycleDeps,
                        out: CycleOutcome) -> list[Document]:
    """Every source once, concurrently; failures are recorded in ``out`` and as errors."""
    async def one(url: str) -> Document | None:
        try:
            return await deps.fetch(url)
        except SourceFailed as exc:
            out.failed_sources[url] = str(exc)
            await _error(deps, cycle_id, agent_id=None, component="agents.imperium.sources",
                         error_class="SourceFailed", message=str(exc), context={"source": url})
            return None

    docs = await asyncio.gather(*(one(url) for url in sources))
    return [d for d in docs if d is not None]


async def _learn(agent: AgentInfo, topic: str, docs: Sequence[Document], *, cycle_id: str,
                 deps: CycleDeps, cfg: CycleConfig, why: str = ROTATION) -> Insight | None:
    """One attempt: the best excerpt, the model's insight, its records. None = failed."""
    if not docs:
        return None
    scored = [(doc, *best_excerpt(topic, doc.text, EXCERPT_CHARS)) for doc in docs]
    doc, excerpt, relevance = max(scored, key=lambda d: (d[2], d[0].url))
    try:
        answer = await deps.infer(agent.agent_id, _prompt(topic, excerpt), INSIGHT_SCHEMA,
                                  cfg.max_tokens, _seed(cycle_id, agent.agent_id, topic))
        text, rating = _fields(answer)
        if _echoes_example(text):
            raise InferFailed("the model repeated an example of the prompt instead of answering")
    except MODEL_FAILURES as exc:  # the model's or the inference path's; a bug propagates
        await _error(deps, cycle_id, agent_id=agent.agent_id,
                     component="agents.imperium.learning", error_class=type(exc).__name__,
                     message=str(exc), context={"topic": topic})
        return None
    value = learning_value(rating, relevance, text)
    sections = chunk_sections(doc.text, source=doc.url, title=doc.title)
    relevant = rank_passages(topic, sections, cfg.passages_per_result)
    # the whole document is remembered (most relevant to the topic first): a retest asks
    # about what the agent read, not only the sections that share the topic's words
    passages = [*relevant, *(p for p in sections if p not in relevant)][
        :cfg.passages_per_result]
    now = deps.now_ms()
    await deps.emit("internet_learning_result", {
        "occurred_at": now, "agent_id": agent.agent_id, "agent_type": agent.agent_type,
        "topic": topic, "source_url": doc.url, "title": doc.title,
        "content_summary": excerpt[:280], "relevance_score": round(relevance, 4),
        "learning_value": value, "insights_extracted": [text], "cycle_id": cycle_id,
        "passages": [{"text": p.text, "section": p.section, "content_hash": p.content_hash}
                     for p in passages]})
    await deps.emit("learning_event", {
        "occurred_at": now, "agent_id": agent.agent_id, "agent_type": agent.agent_type,
        "event_type": "insight", "topic": topic, "insight": text, "learning_value": value,
        "source": doc.url, "impact_score": round(rating / 10, 3), "cycle_id": cycle_id,
        "metadata": {"model_relevance": str(rating), "topic_reason": why},
        "confidence": round(relevance, 4),
        "tags": [agent.agent_type]})
    return Insight(agent.agent_id, topic, text, value, doc.url)


def _close(out: CycleOutcome, timeout_s: float, timed_out: bool) -> None:
    """Status and reason of a finished cycle (see the module doc)."""
    reasons = [f"timed out after {timeout_s:g} s"] if timed_out else []
    if out.failed_sources:
        first = next(iter(sorted(out.failed_sources.items())))
        reasons.append(f"{len(out.failed_sources)} trusted source(s) failed ({first[1]})")
    failed = sum(len(t) for t in out.failed_topics.values())
    if failed:
        reasons.append(f"{failed} learning attempt(s) gave no insight")
    if not out.insights:
        out.status, out.reason = "failed", "; ".join(reasons) or "no agent learned anything"
    elif reasons:
        out.status, out.reason = "partial", "; ".join(reasons)


async def run_cycle(cycle_id: str, agents: Sequence[AgentInfo], *, sources: Sequence[str],
                    deps: CycleDeps, cfg: CycleConfig, metrics: MutableMapping[str, AgentMetrics],
                    trigger: str) -> CycleOutcome:
    """Run one cycle (see the module doc); stores each agent's new metrics in ``metrics``
    (by agent id) and returns the outcome. An agent's topics this cycle are its rotation at
    its own cycle count, so the rotation survives restarts with the metrics."""
    ordered = sorted(agents, key=lambda a: (-a.priority, a.agent_id))
    before = {a.agent_id: metrics.get(a.agent_id) or AgentMetrics(a.agent_id, a.agent_type)
              for a in ordered}
    chosen = {a.agent_id: _choose(a, before[a.agent_id].total_learning_cycles,
                                  cfg.topics_per_agent) for a in ordered}
    topics = {agent_id: [t for t, _why in pairs] for agent_id, pairs in chosen.items()}
    start = deps.now_ms()
    await deps.emit("learning_cycle_started", {
        "occurred_at": start, "cycle_id": cycle_id, "start_time": start,
        "participating_agents": [a.agent_id for a in ordered], "trigger": trigger,
        "topics": sorted({t for ts in topics.values() for t in ts}),
        "agent_topics": [{"agent_id": a.agent_id, "topic": t, "reason": why}
                         for a in ordered for t, why in chosen[a.agent_id]]})
    out = CycleOutcome(cycle_id, "completed")
    done: dict[str, set[str]] = {a.agent_id: set() for a in ordered}
    gate = asyncio.Semaphore(cfg.max_concurrent)

    async def one(agent: AgentInfo, docs: list[Document]) -> None:
        async with gate:
            for topic, why in chosen[agent.agent_id]:
                insight = await _learn(agent, topic, docs, cycle_id=cycle_id, deps=deps,
                                       cfg=cfg, why=why)
                done[agent.agent_id].add(topic)
                if insight is not None:
                    out.insights.append(insight)

    async def learn_all() -> None:
        docs = await _read_sources(sources, cycle_id=cycle_id, deps=deps, out=out)
        await asyncio.gather(*(one(a, docs) for a in ordered))

    timed_out = False
    try:
        await asyncio.wait_for(learn_all(), cfg.timeout_s)
    except TimeoutError:
        timed_out = True
    learned = {(i.agent_id, i.topic) for i in out.insights}
    for agent in ordered:  # attempts without an insight, including those cut by the timeout
        missed = [t for t in topics[agent.agent_id] if (agent.agent_id, t) not in learned]
        if missed:
            out.failed_topics[agent.agent_id] = missed
    _close(out, cfg.timeout_s, timed_out)
    end = deps.now_ms()
    await deps.emit("learning_cycle_completed", {
        "occurred_at": end, "cycle_id": cycle_id, "start_time": start, "end_time": end,
        "status": out.status, "participating_agents": [a.agent_id for a in ordered],
        "total_learning_value": out.total_value,
        "insights": [i.text for i in sorted(out.insights, key=lambda i: -i.value)[:10]],
        "success_count": out.successes, "failure_count": out.failures, "reason": out.reason})
    for agent in ordered:
        updated = update_metrics(
            before[agent.agent_id], at_ms=end,
            insights=[i for i in out.insights if i.agent_id == agent.agent_id],
            failed_topics=out.failed_topics.get(agent.agent_id, []),
            failed_sources=sorted(out.failed_sources))
        metrics[agent.agent_id] = updated
        await deps.emit("agent_metrics", metrics_record(updated, agent, at_ms=end))
    return out


def _choose(agent: AgentInfo, cycle_number: int, k: int) -> list[tuple[str, str]]:
    """``k`` ``(topic, why)`` for the agent's ``cycle_number``-th cycle: its weakness
    target's topic first when it has one, then its rotation (module doc)."""
    rotation = [(t, ROTATION) for t in pick_topics(agent.topics, cycle_number, k)]
    if agent.target is None:
        return rotation
    rest = [(t, why) for t, why in rotation if t != agent.target.topic]
    return [(agent.target.topic, agent.target.reason), *rest][:k]


def metrics_record(m: AgentMetrics, agent: AgentInfo, *, at_ms: int) -> dict[str, Any]:
    """The ``agent_metrics`` record (without envelope) of ``m`` for an active ``agent``."""
    return {
        "occurred_at": at_ms, "agent_id": m.agent_id, "agent_type": m.agent_type,
        "learning_score": m.learning_score, "success_rate": round(m.success_rate, 4),
        "failure_rate": round(m.failure_rate, 4),
        "total_learning_cycles": m.total_learning_cycles,
        "last_learning_cycle": m.last_learning_cycle, "last_success": m.last_success,
        "last_failure": m.last_failure, "learning_patterns": list(m.learning_patterns),
        "improvement_suggestions": list(m.improvement_suggestions),
        "xp": agent.xp, "level": agent.level, "prestige": agent.prestige, "capabilities": {},
        "paused": False, "priority": agent.priority}


def parse_answer(raw: dict[str, Any]) -> dict[str, Any]:
    """The parsed JSON of an inference response record; raises :class:`InferFailed`."""
    if raw.get("error"):
        raise InferFailed(f"{raw['error']['code']}: {raw['error']['message']}")
    if not raw.get("json"):
        raise InferFailed("response carries no JSON")
    try:
        value = json.loads(raw["json"])
    except json.JSONDecodeError as exc:
        raise InferFailed(f"response JSON does not parse: {exc}") from exc
    if not isinstance(value, dict):
        raise InferFailed("JSON answer is not an object")
    return value
