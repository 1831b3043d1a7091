"""Building blocks shared by the route modules: input models and operation factories."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from api.auth import Scope
from api.operations import Call, Operation
from api.pageplan import Filter
from api.reads import Ident, ReadQuery, ViewSpec, page_plan, read_page
from api.shapes import list_answer, ref, table_row

__all__ = [
    "AgentPath",
    "Body",
    "Priority",
    "XpAward",
    "json_int",
    "ReasonBody",
    "Text",
    "command_op",
    "list_op",
]

Text = Field(default=None, max_length=2000, description="free text, at most 2000 characters")


def _whole(value: Any) -> Any:
    """JSON has one number type: ``3.0`` is the integer 3 (JSON Schema agrees)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def json_int(ge: int, le: int) -> Any:
    """An integer in ``[ge, le]`` for a strict body that also takes ``3.0`` (JSON has one
    number type; JSON Schema calls 3.0 an integer) but never ``"3"`` or ``true``."""
    return Annotated[int, Field(ge=ge, le=le), BeforeValidator(_whole)]


Priority = Annotated[int, Field(ge=0, le=1000), BeforeValidator(_whole)]
"""A scheduling priority, 0–1000 (see :func:`json_int`)."""
XpAward = Annotated[int, Field(ge=0, le=1_000_000), BeforeValidator(_whole)]
"""Experience points awarded, 0–1,000,000 (see :func:`json_int`)."""


class Body(BaseModel):
    """Base of command bodies: strict JSON types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class AgentPath(BaseModel):
    """``{agent_id}`` in a path."""

    agent_id: Ident


class ReasonBody(Body):
    """An optional reason, recorded with the command."""

    reason: str | None = Text


def list_op(path: str, spec: ViewSpec, summary: str, tag: str, *,
            query_model: type[ReadQuery] = ReadQuery,
            filters: Sequence[Filter] = (), description: str = "") -> Operation:
    """A paginated, filtered GET over one Postgres view (``read`` scope, cacheable): the
    shared filters of :class:`ReadQuery` plus the route's own ``filters`` (values from
    ``query_model``), served by :func:`api.reads.read_page`."""
    plan = page_plan(spec, filters)

    async def handler(call: Call) -> dict[str, Any]:
        return await read_page(call, spec, plan)

    return Operation("GET", path, handler, summary, tag, list_answer(table_row(spec.table)),
                     query_model=query_model, statuses=(400, 401, 403, 429, 503),
                     cacheable=True, description=description)


def command_op(method: str, path: str, handler: Callable[[Call], Any], summary: str, tag: str,
               *, command: str, body: type[BaseModel] | None = None,
               path_model: type[BaseModel] | None = None,
               query_model: type[BaseModel] | None = None, statuses: tuple[int, ...] = (),
               description: str = "", scope: Scope = Scope.COMMAND) -> Operation:
    """A mutating operation: ``scope`` (default ``command``; operator decisions ``admin``),
    202 ``CommandAccepted``, audited."""
    return Operation(method, path, handler, summary, tag, ref("CommandAccepted"),
                     scope=scope, status=202, path_model=path_model, body_model=body,
                     query_model=query_model, command=command,
                     statuses=(400, 401, 403, 415, 422, 429, 503, *statuses),
                     description=description)
