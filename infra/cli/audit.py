"""``lvlup audit trail ID`` (the replay commands are in :mod:`infra.cli.replaycmd`)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the audit commands to ``app``."""
    audit = typer.Typer(help="Audit trails.", no_args_is_help=True)
    app.add_typer(audit, name="audit")

    @audit.command("trail")
    def trail(
        ctx: typer.Context,
        entity_id: Annotated[str, typer.Argument(help="agent, proposal, cycle, custody run "
                                                      "or inference request id")],
        as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")]
            = False,
    ) -> None:
        """Every record about ``ENTITY_ID``, in order, with topic/partition/offset."""
        from sinks.audit import audit_trail

        rows = audit_trail(ctx.obj, entity_id)
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row, default=str))
            return
        table = Table("occurred_at", "record", "topic:partition@offset", "agent")
        for row in rows:
            table.add_row(str(row["occurred_at"]), row["record_type"],
                          f"{row['topic']}:{row['partition']}@{row['offset']}",
                          row["agent_id"])
        Console().print(table)
        typer.echo(f"{len(rows)} records")
