"""Improvement proposals: list, one proposal with its history, and the decision command.

``POST /api/proposals/{proposal_id}/decision`` writes ``proposal_decided``. The record
needs the proposal's agent: given in the body, or looked up in the ``proposals`` view (404
when the view does not know the proposal).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from api.commands import publish
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.reads import Ident, ViewSpec, pg_snapshot
from api.routes.common import Body, XpAward, command_op, list_op
from api.shapes import nullable, table_row, view_answer
from sinks.postgres import models as m

__all__ = ["DecisionBody", "ProposalPath", "operations"]


class ProposalPath(BaseModel):
    """``{proposal_id}`` in a path."""

    proposal_id: Ident


class DecisionBody(Body):
    """The final decision on a proposal."""

    decision: Literal["approved", "declined", "withdrawn"]
    reason: str = Field(min_length=1, max_length=2000)
    xp_awarded: XpAward = 0
    agent_id: Ident | None = Field(default=None,
                                   description="the proposal's agent; default: from the view")


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
    agent_id = b.agent_id
    if agent_id is None:
        row, _history, _mark = await _lookup(call, proposal_id)
        if row is None:
            raise ApiError(404, "not_found", "no such proposal in the view; give agent_id to "
                           "decide a proposal the view has not caught up with",
                           {"proposal_id": proposal_id})
        agent_id = str(row["agent_id"])
    call.agent_id = agent_id
    return await publish(call, "proposal_decided", {
        "proposal_id": proposal_id, "agent_id": agent_id, "status": b.decision,
        "decided_by": call.actor, "reason": b.reason, "xp_awarded": b.xp_awarded})


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
                   "Decide a proposal (proposal_decided)", tag, command="proposals.decide",
                   body=DecisionBody, path_model=ProposalPath, statuses=(404,)),
    ]
