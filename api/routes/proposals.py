"""Improvement proposals: list, one proposal with its history, and the decision command.

``POST /api/proposals/{proposal_id}/decision`` writes ``proposal_decided``: an operator
decision, so it needs the ``admin`` scope. It follows the proposal's state machine as the
``proposals`` view shows it (submitted → gated | rejected → scanned → experimented →
approved | declined | withdrawn): a proposal in a final state (:data:`FINAL_STATES`) answers
``409 proposal_already_decided`` with its state, one the view does not know 404 (its state
cannot be checked). The agent comes from the view; an ``agent_id`` in the body must match it
(422 otherwise). ``xp_awarded`` follows the one XP rule of
:func:`schemas.commands.decision_xp` (the CLI's too).

The view lags the log by the sink's delay: two decisions sent within that window both pass
this check (the proposals worker acts on the first).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from api.auth import Scope
from api.commands import publish
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.reads import Ident, ViewSpec, pg_snapshot
from api.routes.common import Body, XpAward, command_op, list_op
from api.shapes import nullable, table_row, view_answer
from schemas.commands import DecisionStatus, proposal_decided_fields
from sinks.postgres import models as m

__all__ = ["FINAL_STATES", "DecisionBody", "ProposalPath", "operations"]

FINAL_STATES = frozenset({"approved", "declined", "withdrawn", "rejected"})
"""Proposal states no decision may follow (``rejected``: the custody gate refused it and
the policy declined it)."""


class ProposalPath(BaseModel):
    """``{proposal_id}`` in a path."""

    proposal_id: Ident


class DecisionBody(Body):
    """The final decision on a proposal."""

    decision: DecisionStatus
    reason: str = Field(min_length=1, max_length=2000)
    xp_awarded: XpAward | None = Field(
        default=None, description="XP for the proposal's agent: default 50 for an approval "
        "(schemas.commands.APPROVED_XP), must be 0 or absent otherwise")
    agent_id: Ident | None = Field(default=None,
                                   description="the proposal's agent; must match the view's")


async def _lookup(call: Call, proposal_id: str) -> tuple[dict[str, Any] | None,
                                                        list[dict[str, Any]], dict[str, Any]]:
    p, h = m.proposals, m.proposal_history

    def work(conn: Connection) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        row = conn.execute(select(p).where(p.c.proposal_id == proposal_id)).mappings().first()
        hist = conn.execute(select(h).where(h.c.proposal_id == proposal_id)
                            .order_by(h.c.occurred_at, h.c.event_id).limit(500)).mappings()
        return (dict(row) if row else None), [dict(x) for x in hist.all()]

    (row, history), mark = await pg_snapshot(call, ["proposals", "proposal_history"], work)
    return row, history, mark


async def _one(call: Call) -> dict[str, Any]:
    row, history, mark = await _lookup(call, call.path.proposal_id)
    if row is None:
        raise ApiError(404, "not_found", "no such proposal in the view",
                       {"proposal_id": call.path.proposal_id, "watermark": mark})
    return {"proposal": row, "history": history, "watermark": mark}


async def _decide(call: Call) -> JsonResponse:
    b: DecisionBody = call.body
    proposal_id = call.path.proposal_id
    row, _history, mark = await _lookup(call, proposal_id)
    if row is None:
        raise ApiError(404, "not_found", "no such proposal in the view (its state cannot be "
                       "checked before the sink has it)",
                       {"proposal_id": proposal_id, "watermark": mark})
    agent_id, status = str(row["agent_id"]), str(row["status"])
    call.agent_id = agent_id
    if b.agent_id is not None and b.agent_id != agent_id:
        raise ApiError(422, "validation_failed", "agent_id does not match the proposal's agent",
                       {"proposal_id": proposal_id, "agent_id": agent_id})
    if status in FINAL_STATES:
        raise ApiError(409, "proposal_already_decided",
                       f"proposal {proposal_id} is already {status}",
                       {"proposal_id": proposal_id, "status": status,
                        "decided_by": row.get("decided_by"), "watermark": mark})
    try:
        fields = proposal_decided_fields(proposal_id, agent_id, b.decision,
                                         decided_by=call.actor, reason=b.reason,
                                         xp=b.xp_awarded)
    except ValueError as exc:
        raise ApiError(422, "validation_failed", str(exc), {"proposal_id": proposal_id}) from exc
    return await publish(call, "proposal_decided", fields)


def operations() -> list[Operation]:
    """Proposal reads and the decision command."""
    tag = "proposals"
    p, h = m.proposals, m.proposal_history
    return [
        list_op("/api/proposals",
                ViewSpec(p, "updated_at", type_column="status"),
                "Proposals (event_type filters statuses)", tag),
        list_op("/api/proposals/history",
                ViewSpec(h, "occurred_at", type_column="record_type"),
                "Proposal history (event_type filters record types)", tag),
        Operation("GET", "/api/proposals/{proposal_id}", _one, "One proposal and its history",
                  tag, view_answer({"proposal": nullable(table_row(p)),
                                    "history": {"type": "array", "items": table_row(h)}}),
                  path_model=ProposalPath, statuses=(401, 403, 404, 429, 503)),
        command_op("POST", "/api/proposals/{proposal_id}/decision", _decide,
                   "Decide a proposal (proposal_decided; admin; 409 once decided)", tag,
                   command="proposals.decide", body=DecisionBody, path_model=ProposalPath,
                   statuses=(404, 409), scope=Scope.ADMIN),
    ]
