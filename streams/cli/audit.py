"""``lvlup replay rebuild`` and ``lvlup audit trail ID``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streams.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the replay and audit commands to ``app``."""
    replay = typer.Typer(help="Replay the log for audits.", no_args_is_help=True)
    audit = typer.Typer(help="Audit trails.", no_args_is_help=True)
    app.add_typer(replay, name="replay")
    app.add_typer(audit, name="audit")

    @replay.command("rebuild")
    def rebuild(
        ctx: typer.Context,
        certificate: Annotated[Path, typer.Option(help="where to write the certificate")] =
            Path("replay-certificate.json"),
        keep_shadow: Annotated[bool, typer.Option(help="keep the shadow database")] = False,
    ) -> None:
        """Rebuild the Postgres views from the log in a shadow database and compare;
        exit 1 naming the views and keys that differ."""
        from sinks.replay import rebuild_postgres

        settings: Settings = ctx.obj
        cert = rebuild_postgres(settings, keep_shadow=keep_shadow)
        certificate.write_text(json.dumps(dataclasses.asdict(cert), indent=1))
        table = Table("view", "rows live", "rows shadow", "checksum", title="replay rebuild")
        for view, v in cert.views.items():
            same = "equal" if v["checksum_live"] == v["checksum_shadow"] else "DIFFERS"
            table.add_row(view, str(v["rows_live"]), str(v["rows_shadow"]), same)
        Console().print(table)
        for view, keys in cert.mismatches.items():
            typer.echo(f"mismatch in {view}: {', '.join(keys)}", err=True)
        typer.echo(f"verdict: {'equal' if cert.equal else 'DIFFERENT'}; certificate "
                   f"{certificate}")
        if not cert.equal:
            raise typer.Exit(1)

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
