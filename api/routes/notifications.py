"""Notifications: list (filters) and mark-read.

Marking read writes the notification again with ``read = true`` (same ``notification_id``;
the view keeps the latest), copied from the ``notifications`` view — 404 when the view does
not have it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from api.commands import publish
from api.errors import ApiError, JsonResponse
from api.operations import Call, Operation
from api.pageplan import Filter
from api.reads import Ident, ReadQuery, ViewSpec, pg_snapshot
from api.routes.common import command_op, list_op
from sinks.postgres import models as m

__all__ = ["NotificationPath", "NotificationsQuery", "operations"]


class NotificationsQuery(ReadQuery):
    """Notification filters: the shared ones (``event_type`` = kind), ``recipient``,
    ``unread``."""

    recipient: str | None = Field(default=None, max_length=200,
                                  pattern=r"^[^\x00-\x1f\x7f]+$")
    unread: bool | None = Field(default=None, description="true: only unread ones")


class NotificationPath(BaseModel):
    """``{notification_id}`` in a path."""

    notification_id: Ident


async def _mark_read(call: Call) -> JsonResponse:
    n = m.notifications
    nid = call.path.notification_id

    def work(conn: Connection) -> dict[str, Any] | None:
        row = conn.execute(select(n).where(n.c.notification_id == nid)).mappings().first()
        return dict(row) if row else None

    row, _mark = await pg_snapshot(call, ["notifications"], work)
    if row is None:
        raise ApiError(404, "not_found", "no such notification in the view",
                       {"notification_id": nid})
    call.agent_id = row["agent_id"]
    return await publish(call, "notification", {
        "notification_id": nid, "recipient": row["recipient"] or "",
        "agent_id": row["agent_id"], "kind": row["kind"], "title": row["title"] or "",
        "message": row["message"] or "", "priority": row["priority"] or "normal",
        "read": True, "link": row["link"]})


def operations() -> list[Operation]:
    """Notification reads and mark-read."""
    n = m.notifications
    tag = "notifications"
    return [
        list_op("/api/notifications", ViewSpec(n, "occurred_at", type_column="kind"),
                "Notifications (event_type filters kinds)", tag,
                query_model=NotificationsQuery,
                filters=[Filter("recipient", lambda p: n.c.recipient == p,
                                lambda q: q.recipient or None),
                         Filter("unread", lambda p: n.c.read == p,
                                lambda q: None if q.unread is None else not q.unread)]),
        command_op("POST", "/api/notifications/{notification_id}/read", _mark_read,
                   "Mark a notification read", tag, command="notifications.mark_read",
                   path_model=NotificationPath, statuses=(404,)),
    ]
