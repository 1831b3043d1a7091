"""The agent registry: list and status reads, and the registry commands (``agent_command``).

``POST /api/imperium/agents`` (or the seed's ``…/agents/register``) registers,
``…/{agent_id}/pause|resume`` and ``…/priority`` change an agent, ``DELETE …/{agent_id}``
unregisters; each is one ``agent_command`` record on ``lvlup.agents.commands`` (202 after
the ack). The ``agents`` view reflects it once the
Postgres sink consumed it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from api.commands import publish
from api.errors import JsonResponse
from api.operations import Call, Operation
from api.pageplan import Filter
from api.reads import Ident, ReadQuery, ViewSpec, pg_snapshot
from api.routes.common import AgentPath, Body, Priority, ReasonBody, Text, command_op, list_op
from api.shapes import obj, table_row, view_answer
from sinks.postgres import models as m

__all__ = ["AgentsQuery", "PriorityBody", "RegisterAgent", "UnregisterQuery", "operations"]

_AGENT_TYPE = Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]{0,63}$", description="agent kind")


class RegisterAgent(Body):
    """Register (or re-register) an agent."""

    agent_id: Ident
    agent_type: str = _AGENT_TYPE
    priority: Priority | None = None
    capabilities: dict[str, str] = Field(default_factory=dict, max_length=50,
                                         description="capability name → description")
    reason: str | None = Text


class PriorityBody(Body):
    """A new scheduling priority (0–1000, higher first)."""

    priority: Priority
    reason: str | None = Text


class UnregisterQuery(BaseModel):
    """``DELETE`` takes its optional reason as a query parameter."""

    model_config = ConfigDict(extra="ignore")

    reason: str | None = Field(default=None, max_length=2000)


class AgentsQuery(ReadQuery):
    """Agent list filters: the shared ones plus ``status``."""

    status: str | None = Field(default=None, pattern=r"^(active|paused|unregistered)$")


def _command(call: Call, agent_id: str, action: str, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"agent_id": agent_id, "action": action, "requested_by": call.actor,
              "capabilities": {}, "agent_type": None, "priority": None, "reason": None}
    record.update(fields)
    return record


async def _register(call: Call) -> JsonResponse:
    b: RegisterAgent = call.body
    return await publish(call, "agent_command", _command(
        call, b.agent_id, "register", agent_type=b.agent_type, priority=b.priority,
        capabilities=dict(b.capabilities), reason=b.reason))


def _simple(action: str) -> Any:
    async def handler(call: Call) -> JsonResponse:
        reason = getattr(call.body, "reason", None) or getattr(call.query, "reason", None)
        return await publish(call, "agent_command",
                             _command(call, call.path.agent_id, action, reason=reason))

    return handler


async def _priority(call: Call) -> JsonResponse:
    b: PriorityBody = call.body
    return await publish(call, "agent_command", _command(
        call, call.path.agent_id, "set_priority", priority=b.priority, reason=b.reason))


async def _agents_status(call: Call) -> dict[str, Any]:
    """Every agent with its registry state, latest metrics and level."""
    a, mt, lv = m.agents, m.agent_metrics, m.agent_levels
    stmt = (select(a.c.agent_id, a.c.agent_type, a.c.status, a.c.priority, a.c.updated_at,
                   mt.c.learning_score, mt.c.success_rate, mt.c.total_learning_cycles,
                   mt.c.last_learning_cycle, lv.c.level, lv.c.prestige, lv.c.xp)
            .select_from(a.outerjoin(mt, mt.c.agent_id == a.c.agent_id)
                         .outerjoin(lv, lv.c.agent_id == a.c.agent_id))
            .order_by(a.c.agent_id).limit(500))

    def work(conn: Connection) -> list[dict[str, Any]]:
        return [dict(r) for r in conn.execute(stmt).mappings().all()]

    rows, mark = await pg_snapshot(call, ["agents", "agent_metrics", "agent_levels"], work)
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return {"agents": rows, "counts": counts, "watermark": mark}


_STATUS_ROW = obj({
    **{k: v for k, v in table_row(m.agents)["properties"].items()
       if k in ("agent_id", "agent_type", "status", "priority", "updated_at")},
    **{k: {} for k in ("learning_score", "success_rate", "total_learning_cycles",
                       "last_learning_cycle", "level", "prestige", "xp")}})


def operations() -> list[Operation]:
    """The registry's operations."""
    spec = ViewSpec(m.agents, "updated_at", agent_column="agent_id")
    tag = "imperium"
    return [
        list_op("/api/imperium/agents", spec, "Registered agents (the agents view)", tag,
                query_model=AgentsQuery,
                filters=[Filter("status", lambda p: m.agents.c.status == p,
                                lambda q: q.status or None)]),
        command_op("POST", "/api/imperium/agents", _register, "Register an agent", tag,
                   command="agents.register", body=RegisterAgent),
        # the orchestrator seed's path for the same command (before ``{agent_id}`` paths;
        # a DELETE of an agent named ``register`` still reaches the unregister route)
        command_op("POST", "/api/imperium/agents/register", _register,
                   "Register an agent (the seed's path)", tag, command="agents.register",
                   body=RegisterAgent),
        command_op("POST", "/api/imperium/agents/{agent_id}/pause", _simple("pause"),
                   "Pause an agent", tag, command="agents.pause", body=ReasonBody,
                   path_model=AgentPath),
        command_op("POST", "/api/imperium/agents/{agent_id}/resume", _simple("resume"),
                   "Resume a paused agent", tag, command="agents.resume", body=ReasonBody,
                   path_model=AgentPath),
        command_op("POST", "/api/imperium/agents/{agent_id}/priority", _priority,
                   "Set an agent's priority", tag, command="agents.set_priority", body=PriorityBody,
                   path_model=AgentPath),
        command_op("DELETE", "/api/imperium/agents/{agent_id}", _simple("unregister"),
                   "Unregister an agent", tag, command="agents.unregister", path_model=AgentPath,
                   query_model=UnregisterQuery),
        Operation("GET", "/api/agents/status", _agents_status,
                  "Every agent: registry state, metrics, level", "agents",
                  view_answer({"agents": {"type": "array", "items": _STATUS_ROW},
                               "counts": {"type": "object",
                                          "additionalProperties": {"type": "integer"}}}),
                  statuses=(401, 403, 429, 503), cacheable=True),
    ]
