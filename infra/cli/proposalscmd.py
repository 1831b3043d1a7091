"""``lvlup proposals decide|list`` and ``lvlup notifications read``: the operator's side of
the proposals pipeline (issue #8).

``decide`` publishes a ``proposal_decided`` record (``approve`` → ``approved``, ``reject`` →
``declined``, ``decided_by`` the operator; its fields and XP from
:func:`schemas.commands.proposal_decided_fields`, the rule the API follows too) and returns
once the broker acked it; the Postgres
sink puts it in the ``proposals`` and ``proposal_history`` views and the proposals worker
notifies. The proposal's agent is read from the ``proposals`` view unless ``--agent`` is given.
The newest decision wins in the view (an operator may overrule the policy).
``notifications read`` republishes a notification with ``read`` set (same id: the view's row
is replaced). ``notifications digest`` publishes the weekly digest
(:mod:`agents.proposals.digest`; run it from cron).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from sqlalchemy import Engine, text

from agents.proposals.digest import DIGEST_QUERIES, digest_record
from schemas.commands import proposal_decided_fields
from streams.errors import LvlupError
from streams.producer import Delivery, EventProducer
from streams.settings import Settings

__all__ = ["decide", "digest", "lookup_agent", "mark_read", "register"]

OPERATOR_PRODUCER = "lvlup.cli"


def lookup_agent(engine: Engine, proposal_id: str) -> str:
    """The agent of ``proposal_id`` in the ``proposals`` view; :class:`LvlupError` if absent."""
    with engine.connect() as conn:
        agent = conn.execute(text("SELECT agent_id FROM proposals WHERE proposal_id = :p"),
                             {"p": proposal_id}).scalar()
    if agent is None:
        raise LvlupError(f"proposal {proposal_id!r} is not in the proposals view (give --agent)")
    return str(agent)


def decide(producer: EventProducer, proposal_id: str, agent_id: str, *, approve: bool,
           reason: str, by: str, xp: int | None = None) -> tuple[dict[str, Any], Delivery]:
    """Publish the operator's decision (``xp``: the XP of an approval, default
    :data:`schemas.commands.APPROVED_XP`); returns the record and where it landed. Raises
    :class:`LvlupError` for an empty reason or operator or an XP the rule refuses,
    ``DeliveryFailed`` without an ack."""
    try:
        fields = proposal_decided_fields(proposal_id, agent_id,
                                         "approved" if approve else "declined",
                                         decided_by=by, reason=reason, xp=xp)
    except ValueError as exc:
        raise LvlupError(f"{exc} (--reason, --by, --xp)") from exc
    record = {"event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
              "producer": OPERATOR_PRODUCER, **fields}
    return record, producer.emit_sync("proposal_decided", record)


def mark_read(engine: Engine, producer: EventProducer, notification_id: str) -> Delivery:
    """Republish notification ``notification_id`` (from the view) with ``read`` true."""
    with engine.connect() as conn:
        row = conn.execute(text(
            "SELECT notification_id, recipient, agent_id, kind, title, message, priority, link"
            " FROM notifications WHERE notification_id = :n"), {"n": notification_id}
        ).mappings().first()
    if row is None:
        raise LvlupError(f"notification {notification_id!r} is not in the notifications view")
    record = {**dict(row), "read": True, "producer": OPERATOR_PRODUCER,
              "event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000)}
    return producer.emit_sync("notification", record)


def digest(engine: Engine, until: datetime) -> dict[str, Any]:
    """The weekly digest ``notification`` for the 7 days before ``until`` (aware UTC)."""
    with engine.connect() as conn:
        results = {name: [(r[0], r[1]) for r in conn.execute(
                       text(sql), {"since": until - timedelta(days=7)})]
                   for name, sql in DIGEST_QUERIES.items()}
    return digest_record(results, until, producer=OPERATOR_PRODUCER)


def _producer(settings: Settings) -> EventProducer:
    from schemas.catalog import load_catalog
    from schemas.codec import load_codec

    return EventProducer(settings.kafka.bootstrap(), load_codec(), load_catalog(),
                         name=OPERATOR_PRODUCER)


def register(app: typer.Typer) -> None:
    """Add ``lvlup proposals`` and ``lvlup notifications`` to ``app``."""
    proposals = typer.Typer(help="Improvement proposals: list, decide.", no_args_is_help=True)
    notifications = typer.Typer(help="Notifications: weekly digest, mark as read.",
                                no_args_is_help=True)
    app.add_typer(proposals, name="proposals")
    app.add_typer(notifications, name="notifications")
    _register_proposals(proposals)
    _register_notifications(notifications)


def _register_proposals(proposals: typer.Typer) -> None:

    @proposals.command("decide")
    def decide_cmd(
        ctx: typer.Context,
        proposal_id: Annotated[str, typer.Argument(help="Proposal id.")],
        verdict: Annotated[str, typer.Argument(help="approve | reject")],
        *,
        reason: Annotated[str, typer.Option("--reason", help="Why (required).")],
        by: Annotated[str, typer.Option("--by", help="Operator name.")] = "operator",
        agent: Annotated[str | None, typer.Option(
            "--agent", help="The proposal's agent (default: from the proposals view).")] = None,
        xp: Annotated[int | None, typer.Option(
            "--xp", min=0, max=1_000_000,
            help="XP for an approval (default 50); 0 or absent for a rejection.")] = None,
    ) -> None:
        """Approve or reject a proposal; prints the published record's position as JSON."""
        from sinks.app import postgres_engine

        settings: Settings = ctx.obj
        if verdict not in ("approve", "reject"):
            raise LvlupError(f"verdict must be approve or reject, not {verdict!r}")
        if agent is None:
            engine = postgres_engine(settings)
            try:
                agent = lookup_agent(engine, proposal_id)
            finally:
                engine.dispose()
        producer = _producer(settings)
        try:
            record, at = decide(producer, proposal_id, agent, approve=verdict == "approve",
                                reason=reason, by=by, xp=xp)
        finally:
            producer.close()
        typer.echo(json.dumps({"proposal_id": proposal_id, "status": record["status"],
                               "topic": at.topic, "partition": at.partition,
                               "offset": at.offset}))

    @proposals.command("list")
    def list_cmd(
        ctx: typer.Context,
        status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    ) -> None:
        """Proposals from the Postgres view, newest first, one JSON object a line."""
        from sinks.app import postgres_engine

        engine = postgres_engine(ctx.obj)
        try:
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT proposal_id, agent_id, status, title, updated_at, decided_by,"
                    " decision_reason FROM proposals"
                    " WHERE (CAST(:s AS text) IS NULL OR status = :s)"
                    " ORDER BY updated_at DESC LIMIT :n"), {"s": status, "n": limit}).mappings()
                for row in rows:
                    typer.echo(json.dumps(dict(row), default=str))
        finally:
            engine.dispose()


def _register_notifications(notifications: typer.Typer) -> None:
    @notifications.command("digest")
    def digest_cmd(ctx: typer.Context) -> None:
        """Publish the weekly digest notification (cron: ``0 8 * * MON``); prints it."""
        from sinks.app import postgres_engine

        engine = postgres_engine(ctx.obj)
        producer = _producer(ctx.obj)
        try:
            record = digest(engine, datetime.now(UTC))
            producer.emit_sync("notification", record)
        finally:
            producer.close()
            engine.dispose()
        typer.echo(record["message"])

    @notifications.command("read")
    def read_cmd(
        ctx: typer.Context,
        notification_id: Annotated[str, typer.Argument(help="Notification id.")],
    ) -> None:
        """Mark a notification as read."""
        from sinks.app import postgres_engine

        engine = postgres_engine(ctx.obj)
        producer = _producer(ctx.obj)
        try:
            at = mark_read(engine, producer, notification_id)
        finally:
            producer.close()
            engine.dispose()
        typer.echo(json.dumps({"notification_id": notification_id, "read": True,
                               "offset": at.offset}))
