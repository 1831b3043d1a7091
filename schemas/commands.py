"""Commands both front ends build the same way: the built-in agents (and their default
learning topics) and the proposal decision.

The API (:mod:`api.routes.proposals`), the CLI (``lvlup proposals decide``), bootstrap
(``lvlup run``) and the proposals worker sit above this module and take their rules from it,
so a decision made from either front end carries the same XP.

XP rule of a decision (:func:`decision_xp`): an approval awards :data:`APPROVED_XP` unless the
operator names another amount; a decline or a withdrawal awards nothing, and naming a
non-zero amount for one is refused (``ValueError``).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = [
    "APPROVED_XP",
    "BUILTIN_AGENTS",
    "BUILTIN_TOPICS",
    "DECISION_STATUSES",
    "AgentType",
    "DecisionStatus",
    "decision_xp",
    "proposal_decided_fields",
]

AgentType = Literal["imperium", "guardian", "sandbox", "conquest"]
"""The kinds of the four built-in agents (custom agent types are free-form strings)."""

BUILTIN_AGENTS: tuple[str, ...] = get_args(AgentType)
"""The built-in agents, in priority order: each is registered with its kind as its id."""

BUILTIN_TOPICS: dict[str, tuple[str, ...]] = {
    "imperium": ("meta-learning AI", "autonomous agent orchestration", "AI self-improvement",
                 "AI governance"),
    "guardian": ("AI security best practices", "AI code quality", "vulnerability detection",
                 "secure coding"),
    "sandbox": ("AI experimentation", "novel ML techniques", "rapid prototyping AI",
                "AI innovation"),
    "conquest": ("app development AI", "AI-driven app design", "mobile AI frameworks",
                 "AI UX optimization"),
}
"""The default learning topics of each built-in agent (the Imperium orchestrator's seed; the
sample stream draws from them too)."""

DecisionStatus = Literal["approved", "declined", "withdrawn"]
"""``proposal_decided.status`` values an operator may give."""

DECISION_STATUSES: tuple[DecisionStatus, ...] = get_args(DecisionStatus)

APPROVED_XP = 50
"""XP a proposal's agent gets when its proposal is approved and no other amount is named."""


def decision_xp(status: str, requested: int | None = None) -> int:
    """The XP a decision of ``status`` awards (module doc), ``requested`` the operator's amount
    (None: the default). Raises ``ValueError`` for an unknown status, a negative amount, or a
    non-zero amount on a decline or withdrawal."""
    if status not in DECISION_STATUSES:
        raise ValueError(f"unknown decision {status!r}: one of {', '.join(DECISION_STATUSES)}")
    if requested is not None and requested < 0:
        raise ValueError("xp_awarded must not be negative")
    if status == "approved":
        return APPROVED_XP if requested is None else requested
    if requested:
        raise ValueError(f"xp_awarded must be 0 for a {status} proposal")
    return 0


def proposal_decided_fields(proposal_id: str, agent_id: str, status: str, *, decided_by: str,
                            reason: str, xp: int | None = None) -> dict[str, Any]:
    """The domain fields of a ``proposal_decided`` record (the caller adds the envelope:
    ``event_id``, ``occurred_at``, ``producer``). Raises ``ValueError`` as
    :func:`decision_xp` does, or for an empty ``reason`` or ``decided_by``."""
    if not reason.strip() or not decided_by.strip():
        raise ValueError("a decision needs a non-empty reason and decider")
    return {"proposal_id": proposal_id, "agent_id": agent_id, "status": status,
            "decided_by": decided_by, "reason": reason,
            "xp_awarded": decision_xp(status, xp)}
