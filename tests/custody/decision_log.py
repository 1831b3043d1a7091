"""A small custody log recorded under policy v1 (runs, items, level changes, one gated
proposal), and a stricter policy under which its decisions flip. Shared by the unit and the
real-Kafka tests of ``lvlup replay decisions``."""

from __future__ import annotations

import uuid
from typing import Any

from agents.custody.evidence import unplaced
from agents.custody.gate import eligible
from agents.custody.policy import CustodyPolicy, load_policy, parse_policy
from agents.custody.progression import apply_run
from agents.custody.replay import new_agent
from agents.proposals.records import gated_record
from schemas.example_data import example_records

T0 = 1_760_000_000_000
MINUTE = 60_000
AGENT = "guardian-dr"
PROPOSAL = "prop-replay-1"
#: alpha 0.001: A = ln(0.9 / 0.001) = 6.80 needs 15 straight passes (v1: 7); basic XP 5 (v1: 10)
STRICT = (
    "version: strict-replay\nsprt: {p0: 0.5, p1: 0.8, alpha: 0.001, beta: 0.10}\n"
    "evidence: {window_days: 14}\n"
    "xp: {per_item: {basic: 5, intermediate: 20, advanced: 35, expert: 55, master: 80,"
    " legendary: 120}, level_step: 50}\n"
    "gate: {categories: [code_quality, security_awareness]}\n")


def strict_policy() -> CustodyPolicy:
    """The stricter counterfactual policy."""
    return parse_policy(STRICT, where="strict.yaml")


def _template(record_type: str) -> dict[str, Any]:
    return max(((v, r) for t, v, r in example_records() if t == record_type),
               key=lambda vr: vr[0])[1]


def _uuid(*parts: object) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def recorded_log() -> list[tuple[str, dict[str, Any]]]:
    """Six 3-item runs, all passed, alternating code_quality / security_awareness at basic,
    folded under v1 exactly as the worker would (item results, run results, level changes),
    then a proposal submitted after them and gated under v1 (eligible)."""
    v1 = load_policy()
    run_t, item_t = _template("custody_run_result"), _template("custody_item_result")
    log: list[tuple[str, dict[str, Any]]] = []
    state = new_agent(AGENT, "guardian", 1)
    history: list[dict[str, Any]] = []
    for n in range(6):
        category = ("code_quality", "security_awareness")[n % 2]
        run_id, at = f"dr-run-{n}", T0 + n * MINUTE
        items = [{**item_t, "event_id": _uuid(run_id, j), "occurred_at": at - 1000 + j,
                  "run_id": run_id, "agent_id": AGENT, "category": category, "tier": "basic",
                  "level": state.level, "item_id": f"{category}/item-{j}", "epoch": 0,
                  "score": 1.0, "passed": True, "request_id": None, "knowledge": []}
                 for j in range(3)]
        run = {**run_t, "event_id": _uuid(run_id), "occurred_at": at, "run_id": run_id,
               "agent_id": AGENT, "agent_type": "guardian", "category": category,
               "tier": "basic", "level": state.level, "items_total": 3, "items_passed": 3,
               "epochs": 1, "xp_awarded": 30, "policy_version": v1.ref}
        progress = apply_run(state, [run], items, occurred_at_ms=at, history=history,
                             policy=v1)
        state = progress.state
        history.append(run)
        log += [("custody_item_result", r) for r in items] + [("custody_run_result", run)]
        if progress.level_changed is not None:
            log.append(("agent_level_changed", progress.level_changed))
    submitted = {**_template("proposal_submitted"), "event_id": _uuid(PROPOSAL),
                 "occurred_at": T0 + 10 * MINUTE, "proposal_id": PROPOSAL, "agent_id": AGENT,
                 "agent_type": "guardian"}
    decision = eligible(AGENT, [unplaced(r) for r in history], T0 + 10 * MINUTE, v1)
    assert decision.eligible, decision.reason
    log += [("proposal_submitted", submitted),
            ("proposal_gated", gated_record(submitted, decision, T0 + 10 * MINUTE + 5))]
    return log
