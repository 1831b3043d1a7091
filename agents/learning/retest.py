"""Learn, then retest: after a learning cycle, each agent that took part gets a custody run
in the category that tests what it could have learned (the seed's loop: test → weakness →
learn → retest).

Pure: :func:`retest_requests` turns a finished cycle into ``custody_test_requested`` records;
imperium emits them. The custody worker answers those items with the agent's memory (its
``agent_memory`` view now holds the passages of the cycle's sources), so the run's item
results cite the knowledge they used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from agents.custody.items import Category, tier_for_level
from agents.learning.cycle import AgentInfo, CycleOutcome

__all__ = ["RETEST_CATEGORY", "RETEST_REQUESTER", "retest_requests"]

#: What a retest tests: the category whose items ask for knowledge.
RETEST_CATEGORY = Category.KNOWLEDGE_VERIFICATION
RETEST_REQUESTER = "imperium.retest"


def retest_requests(outcome: CycleOutcome, agents: Sequence[AgentInfo], *,
                    items: int) -> list[dict[str, Any]]:
    """One ``custody_test_requested`` per agent of a cycle that did not fail (``items``
    items, one epoch, at the agent's tier, drawn first from the ``sources`` the agent's
    insights of this cycle came from — a retest tests what was just read), in agent-id
    order. ``run_id`` and ``seed`` derive from the cycle and agent ids, so a redelivered or
    replayed cycle asks the same run (the custody worker skips a run id it already applied).
    Empty when ``items`` is 0 or the cycle failed or was skipped."""
    if items <= 0 or outcome.status not in ("completed", "partial"):
        return []
    out = []
    for agent in sorted(agents, key=lambda a: a.agent_id):
        read = sorted({i.source for i in outcome.insights if i.agent_id == agent.agent_id})
        digest = hashlib.sha256(f"{outcome.cycle_id}:{agent.agent_id}".encode()).hexdigest()
        out.append({
            "run_id": f"retest-{outcome.cycle_id}-{agent.agent_id}", "agent_id": agent.agent_id,
            "agent_type": agent.agent_type, "category": RETEST_CATEGORY.value,
            "tier": tier_for_level(agent.level).value, "level": agent.level,
            "item_count": items, "epochs": 1, "seed": int(digest[:12], 16),
            "requested_by": RETEST_REQUESTER, "sources": read})
    return out
