"""``lvlup up`` / ``lvlup down`` / ``lvlup status``: the local stack."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from infra.setup import create_catalog_topics, migrate_all
from infra.stack import ServiceStatus, stack_down, stack_status, stack_up
from streams.settings import Settings

__all__ = ["register"]


def _print(statuses: list[ServiceStatus]) -> None:
    table = Table("service", "state", "address", "detail", "seconds")
    for s in statuses:
        table.add_row(s.name, s.state, s.address, s.detail,
                      "" if s.seconds is None else f"{s.seconds:.1f}")
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Add the stack commands to ``app``."""

    @app.command()
    def up(ctx: typer.Context) -> None:
        """Start the local stack (Kafka, Postgres; chdb needs no server). Idempotent."""
        settings: Settings = ctx.obj
        _print(stack_up(settings))
        created = create_catalog_topics(settings)
        fresh = sum(1 for state in created.values() if state == "created")
        typer.echo(f"topics: {len(created)} in the catalog, {fresh} created")
        typer.echo(f"migrations: {migrate_all(settings)}")

    @app.command()
    def down(ctx: typer.Context) -> None:
        """Stop the services this checkout started."""
        _print(stack_down(ctx.obj))

    @app.command()
    def status(ctx: typer.Context) -> None:
        """Report the local stack; exit 1 when an embedded service is stopped."""
        statuses = stack_status(ctx.obj)
        _print(statuses)
        if any(s.state == "stopped" for s in statuses):
            raise typer.Exit(1)
