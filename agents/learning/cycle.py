"""One learning cycle (the seed's Imperium ``run_learning_cycle``), with every collaborator
injected so it runs the same in a Faust worker and in a test.

For each active agent, by priority, at most ``max_concurrent`` at a time: pick topics, read
the trusted sources, take the most relevant excerpt, ask the model for an insight as JSON
(schema-constrained, fails closed), score it, emit an ``internet_learning_result`` and a
``learning_event``. Failures (a source that times out, a model error) become
``error_event`` records and count as failures; they never stop the cycle. The cycle closes
with ``learning_cycle_completed`` — ``completed``, ``partial`` (some failures, or the cycle
timed out: the reason says which) or ``failed`` (nothing learned) — then knowledge transfers
(each agent's best insight to the others) and an ``agent_metrics`` snapshot per agent.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agents.learning.logic import (
    AgentMetrics,
    Insight,
    best_excerpt,
    learning_value,
    pick_topics,
    select_transfers,
    update_metrics,
)
from agents.learning.sources import Document, SourceFailed

__all__ = ["AgentInfo", "CycleConfig", "CycleDeps", "CycleOutcome", "INSIGHT_SCHEMA", "run_cycle"]

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
    """An active agent as the registry knows it."""

    agent_id: str
    agent_type: str
    priority: int
    topics: tuple[str, ...]


@dataclass(frozen=True)
class CycleConfig:
    """Seed settings: ``MAX_CONCURRENT_LEARNING``, ``LEARNING_TIMEOUT`` (seconds)."""

    max_concurrent: int = 3
    timeout_s: float = 300.0
    topics_per_agent: int = 1
    max_tokens: int = 128


class InferFailed(RuntimeError):
    """The model did not give a usable answer (carries the error code)."""


@dataclass
class CycleDeps:
    """What a cycle needs from the outside.

    ``infer(agent_id, prompt, schema, max_tokens, seed)`` returns the parsed JSON answer or
    raises :class:`InferFailed` (or the client's own error); ``emit(record_type, record)``
    publishes; ``fetch(url)`` reads a trusted source; ``now_ms()`` is the clock.
    """

    infer: Callable[[str, str, dict[str, Any], int, int], Awaitable[dict[str, Any]]]
    emit: Callable[[str, dict[str, Any]], Awaitable[None]]
    fetch: Callable[[str], Awaitable[Document]]
    now_ms: Callable[[], int]


@dataclass
class CycleOutcome:
    """Totals of a finished cycle."""

    cycle_id: str
    status: str
    successes: int = 0
    failures: int = 0
    insights: list[Insight] = field(default_factory=list)
    reason: str | None = None

    @property
    def total_value(self) -> float:
        return round(sum(i.value for i in self.insights), 4)


def _prompt(topic: str, doc: Document, excerpt: str) -> str:
    return (f"You study '{topic}'. From this documentation of {doc.title}, give one short, "
            f"concrete insight about {topic} and rate its relevance from 0 to 10.\n\n"
            f"Documentation:\n{excerpt}\n")


async def _learn(agent: AgentInfo, topic: str, *, cycle_id: str, seed: int,
                 sources: Sequence[str], deps: CycleDeps, cfg: CycleConfig,
                 out: CycleOutcome) -> None:
    docs: list[tuple[Document, str, float]] = []
    for url in sources:
        try:
            doc = await deps.fetch(url)
        except SourceFailed as exc:
            await _error(deps, agent, cycle_id, error_class="SourceFailed", message=str(exc),
                         context={"source": url})
            out.failures += 1
            continue
        excerpt, relevance = best_excerpt(topic, doc.text)
        docs.append((doc, excerpt, relevance))
    if not docs:
        return
    doc, excerpt, relevance = max(docs, key=lambda d: (d[2], d[0].url))
    try:
        answer = await deps.infer(agent.agent_id, _prompt(topic, doc, excerpt), INSIGHT_SCHEMA,
                                  cfg.max_tokens, seed)
    except Exception as exc:  # noqa: BLE001 - any model failure is recorded as an error event
        await _error(deps, agent, cycle_id, error_class=type(exc).__name__,
                     message=str(exc)[:500], context={"topic": topic})
        out.failures += 1
        return
    text, rating = str(answer["insight"]).strip(), int(answer["relevance"])
    value = learning_value(rating, relevance, text)
    out.insights.append(Insight(agent.agent_id, topic, text, value, doc.url))
    out.successes += 1
    now = deps.now_ms()
    await deps.emit("internet_learning_result", {
        "occurred_at": now, "agent_id": agent.agent_id, "agent_type": agent.agent_type,
        "topic": topic, "source_url": doc.url, "title": doc.title,
        "content_summary": excerpt[:280], "relevance_score": round(relevance, 4),
        "learning_value": value, "insights_extracted": [text], "cycle_id": cycle_id})
    await deps.emit("learning_event", {
        "occurred_at": now, "agent_id": agent.agent_id, "agent_type": agent.agent_type,
        "event_type": "insight", "topic": topic, "insight": text, "learning_value": value,
        "source": doc.url, "impact_score": round(rating / 10, 3), "cycle_id": cycle_id,
        "metadata": {"model_relevance": str(rating)}, "confidence": round(relevance, 4),
        "tags": [agent.agent_type]})


async def _error(deps: CycleDeps, agent: AgentInfo, cycle_id: str, *, error_class: str,
                 message: str, context: dict[str, str]) -> None:
    fingerprint = hashlib.sha256(f"learning:{error_class}:{sorted(context)}".encode()).hexdigest()
    await deps.emit("error_event", {
        "occurred_at": deps.now_ms(), "error_id": f"err-{cycle_id}-{agent.agent_id}-"
        f"{hashlib.sha256(message.encode()).hexdigest()[:8]}", "agent_id": agent.agent_id,
        "component": "agents.imperium.learning", "error_class": error_class,
        "message": message, "fingerprint": fingerprint[:16], "severity": "medium",
        "context": {"cycle_id": cycle_id, **context}})


async def run_cycle(cycle_id: str, cycle_number: int, agents: Sequence[AgentInfo], *,
                    sources: Sequence[str], deps: CycleDeps, cfg: CycleConfig,
                    metrics: dict[str, AgentMetrics], trigger: str) -> CycleOutcome:
    """Run one cycle; updates ``metrics`` in place and returns the outcome (see module doc)."""
    ordered = sorted(agents, key=lambda a: (-a.priority, a.agent_id))
    start = deps.now_ms()
    topics = {a.agent_id: pick_topics(a.topics, cycle_number, cfg.topics_per_agent)
              for a in ordered}
    await deps.emit("learning_cycle_started", {
        "occurred_at": start, "cycle_id": cycle_id, "start_time": start,
        "participating_agents": [a.agent_id for a in ordered], "trigger": trigger,
        "topics": sorted({t for ts in topics.values() for t in ts})})
    out = CycleOutcome(cycle_id, "completed")
    gate = asyncio.Semaphore(cfg.max_concurrent)

    async def one(agent: AgentInfo) -> None:
        async with gate:
            for i, topic in enumerate(topics[agent.agent_id]):
                seed = int(hashlib.sha256(f"{cycle_id}:{agent.agent_id}:{i}".encode())
                           .hexdigest()[:8], 16)
                await _learn(agent, topic, cycle_id=cycle_id, seed=seed, sources=sources,
                             deps=deps, cfg=cfg, out=out)

    try:
        await asyncio.wait_for(asyncio.gather(*(one(a) for a in ordered)), cfg.timeout_s)
    except TimeoutError:
        out.reason = f"timed out after {cfg.timeout_s:.0f} s"
    if out.successes == 0:
        out.status = "failed"
        out.reason = out.reason or "no agent learned anything"
    elif out.failures or out.reason:
        out.status = "partial"
        out.reason = out.reason or f"{out.failures} learning attempts failed"
    end = deps.now_ms()
    await deps.emit("learning_cycle_completed", {
        "occurred_at": end, "cycle_id": cycle_id, "start_time": start, "end_time": end,
        "status": out.status, "participating_agents": [a.agent_id for a in ordered],
        "total_learning_value": out.total_value,
        "insights": [i.text for i in sorted(out.insights, key=lambda i: -i.value)[:10]],
        "success_count": out.successes, "failure_count": out.failures, "reason": out.reason})
    for ins, target in select_transfers(out.insights, [a.agent_id for a in ordered]):
        await deps.emit("knowledge_transfer", {
            "occurred_at": end, "transfer_id": f"kt-{cycle_id}-{ins.agent_id}-{target}",
            "agent_id": target, "from_agent_id": ins.agent_id, "topic": ins.topic,
            "knowledge": ins.text, "transfer_value": ins.value, "accepted": True,
            "cycle_id": cycle_id})
    for agent in ordered:
        await _metrics(agent, out, metrics=metrics, at=end, topics=topics[agent.agent_id],
                       deps=deps)
    return out


async def _metrics(agent: AgentInfo, out: CycleOutcome, *, metrics: dict[str, AgentMetrics],
                   at: int, topics: list[str], deps: CycleDeps) -> None:
    mine = [i for i in out.insights if i.agent_id == agent.agent_id]
    current = metrics.get(agent.agent_id) or AgentMetrics(agent.agent_id, agent.agent_type)
    updated = update_metrics(current, at_ms=at, successes=len(mine),
                             failures=0 if mine else 1, values=[i.value for i in mine],
                             topics=[i.topic for i in mine] or topics)
    metrics[agent.agent_id] = updated
    await deps.emit("agent_metrics", {
        "occurred_at": at, "agent_id": agent.agent_id, "agent_type": agent.agent_type,
        "learning_score": updated.learning_score, "success_rate": round(updated.success_rate, 4),
        "failure_rate": round(1 - updated.success_rate, 4),
        "total_learning_cycles": updated.total_learning_cycles,
        "last_learning_cycle": updated.last_learning_cycle,
        "last_success": updated.last_success, "last_failure": updated.last_failure,
        "learning_patterns": list(updated.learning_patterns),
        "improvement_suggestions": list(updated.improvement_suggestions),
        "xp": 0, "level": 1, "prestige": 0, "capabilities": {}, "paused": False,
        "priority": agent.priority})


def parse_answer(raw: dict[str, Any]) -> dict[str, Any]:
    """The parsed JSON of an inference response record; raises :class:`InferFailed`."""
    if raw.get("error"):
        raise InferFailed(f"{raw['error']['code']}: {raw['error']['message']}")
    if not raw.get("json"):
        raise InferFailed("response carries no JSON")
    value = json.loads(raw["json"])
    if not isinstance(value, dict):
        raise InferFailed("JSON answer is not an object")
    return value
