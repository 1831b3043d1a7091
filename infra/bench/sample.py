"""A realistic, deterministic mixed event stream (tests, benchmarks, the demo's sample file).

Records are built from the shipped example records (``schemas/examples``) as templates, with
ids, agents, topics, values and times varied by a seeded RNG — so every record is valid for
the newest schema version, and the same ``seed`` gives the same stream.

Mix (share of records): learning events 45 %, token usage 15 %, inference responses 10 %,
custody item results 10 %, guardian findings 5 %, agent metrics 5 %, error events 4 %,
internet-learning results 4 %, agent commands 2 % (after the four registrations).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from schemas.commands import BUILTIN_AGENTS, BUILTIN_TOPICS
from schemas.example_data import example_records
from schemas.registry import load_registry

__all__ = ["SampleStream"]
_MIX = (
    ("learning_event", 45), ("token_usage", 15), ("inference_response", 10),
    ("custody_item_result", 10), ("guardian_finding", 5), ("agent_metrics", 5),
    ("error_event", 4), ("internet_learning_result", 4), ("agent_command", 2),
)
_CATEGORIES = ("knowledge_verification", "code_quality", "security_awareness",
               "performance_optimization", "innovation_capability", "self_improvement",
               "cross_ai_collaboration", "experimental_validation")
_TIERS = ("basic", "intermediate", "advanced", "expert", "master", "legendary")
_SEVERITIES = ("low", "medium", "high")
_RULES = ("B602", "B105", "B311", "B303", "B608", "E501")


def _templates() -> dict[str, dict[str, Any]]:
    """The newest-version example of each record type (physical Avro values)."""
    registry = load_registry()
    out: dict[str, dict[str, Any]] = {}
    for record_type, version, record in example_records():
        if version == registry.latest(record_type).version and record_type not in out:
            out[record_type] = dict(record)
    return out


@dataclass
class SampleStream:
    """Yields ``(record_type, record)`` pairs; ``start_ms`` is the first ``occurred_at``.

    ``agents_per_type`` instances of each built-in agent (``imperium-1`` …); time advances
    ``step_ms`` per record on average.
    """

    seed: int = 7
    start_ms: int = 1_763_769_600_000  # 2025-11-22T00:00:00Z
    step_ms: int = 50
    agents_per_type: int = 2
    rng: random.Random = field(init=False)
    templates: dict[str, dict[str, Any]] = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a reproducible sample, not crypto
        self.templates = _templates()
        self.agents = [(f"{t}-{i}", t) for t in BUILTIN_AGENTS
                       for i in range(1, self.agents_per_type + 1)]

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _base(self, record_type: str, at: int) -> dict[str, Any]:
        rec = dict(self.templates[record_type])
        rec.update(event_id=self._uuid(), occurred_at=at)
        return rec

    def records(self, n: int) -> Iterator[tuple[str, dict[str, Any]]]:
        """``n`` records: first one register command per agent, then the mix."""
        at = self.start_ms
        for agent_id, agent_type in self.agents[:n]:
            rec = self._base("agent_command", at)
            rec.update(agent_id=agent_id, agent_type=agent_type, action="register",
                       priority=50, reason="built-in agent")
            yield "agent_command", rec
            at += self.step_ms
        kinds, weights = zip(*_MIX, strict=True)
        for _ in range(max(0, n - len(self.agents))):
            at += self.rng.randint(1, 2 * self.step_ms)
            kind = self.rng.choices(kinds, weights)[0]
            yield kind, self._make(kind, at)

    def _make(self, kind: str, at: int) -> dict[str, Any]:
        rng = self.rng
        agent_id, agent_type = rng.choice(self.agents)
        rec = self._base(kind, at)
        rec["agent_id"] = agent_id
        if kind == "learning_event":
            rec.update(agent_type=agent_type, topic=rng.choice(BUILTIN_TOPICS[agent_type]),
                       learning_value=round(rng.random(), 3),
                       impact_score=round(rng.random(), 3), cycle_id=None)
        elif kind == "token_usage":
            prompt, completion = rng.randint(20, 800), rng.randint(5, 300)
            rec.update(request_id=f"inf-{rng.getrandbits(40):010x}", prompt_tokens=prompt,
                       completion_tokens=completion, model="local-gemma", route="local",
                       cost_usd=0.0, day=at // 86_400_000)
        elif kind == "inference_response":
            rec.update(request_id=f"inf-{rng.getrandbits(40):010x}",
                       prompt_tokens=rng.randint(20, 800),
                       completion_tokens=rng.randint(5, 300),
                       latency_ms=rng.randint(80, 9000), cached=rng.random() < 0.1)
        elif kind == "custody_item_result":
            rec.update(run_id=f"custody-run-{rng.randint(1, 200):04d}",
                       category=rng.choice(_CATEGORIES), tier=rng.choice(_TIERS[:3]),
                       item_id=f"item-{rng.randint(1, 500)}", passed=rng.random() < 0.7,
                       score=round(rng.random(), 3), seed=rng.getrandbits(31))
        elif kind == "guardian_finding":
            rec.update(finding_id=f"find-{rng.getrandbits(40):010x}",
                       rule_id=rng.choice(_RULES), severity=rng.choice(_SEVERITIES),
                       line=rng.randint(1, 400), proposal_id=None)
        elif kind == "agent_metrics":
            score = round(rng.uniform(10, 95), 2)
            rec.update(agent_type=agent_type, learning_score=score,
                       success_rate=round(score / 100, 3),
                       failure_rate=round(1 - score / 100, 3),
                       total_learning_cycles=rng.randint(1, 500), xp=rng.randint(0, 5000),
                       level=rng.randint(1, 30))
        elif kind == "error_event":
            rec.update(error_id=f"err-{rng.getrandbits(40):010x}",
                       fingerprint=f"{rng.randint(1, 40):016x}",
                       error_class=rng.choice(("TimeoutError", "ValueError", "HTTPError")))
        elif kind == "internet_learning_result":
            rec.update(agent_type=agent_type, topic=rng.choice(BUILTIN_TOPICS[agent_type]),
                       relevance_score=round(rng.random(), 3),
                       learning_value=round(rng.random(), 3), cycle_id=None)
        elif kind == "agent_command":
            rec.update(agent_type=agent_type, action=rng.choice(("pause", "resume")),
                       priority=None, reason="operator")
        return rec
