"""Data commands: ``lvlup topics create``, ``lvlup migrate``, ``lvlup emit``, ``lvlup sql``."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
from rich.table import Table

from infra.setup import create_catalog_topics, migrate_all
from schemas.catalog import Writer, load_catalog
from sinks.clickhouse.owner import open_reader
from streams.emit import emit_lines
from streams.errors import LvlupError
from streams.settings import Settings
from streams.wiring import wiring_for

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the data commands to ``app``."""
    topics = typer.Typer(help="Topic administration.", no_args_is_help=True)
    app.add_typer(topics, name="topics")

    @topics.command("create")
    def topics_create(ctx: typer.Context) -> None:
        """Create every catalog topic with its partitions and config (idempotent)."""
        result = create_catalog_topics(ctx.obj)
        for name, state in sorted(result.items()):
            typer.echo(f"{state:8} {name}")

    @topics.command("list")
    def topics_list() -> None:
        """The topic catalog: name, record type, key, partitions, cleanup policy."""
        table = Table("topic", "record type", "key", "partitions", "cleanup", "retention ms")
        for spec in load_catalog().topics:
            table.add_row(spec.name, spec.value_schema, spec.key, str(spec.partitions),
                          spec.cleanup_policy, str(spec.retention_ms))
        Console().print(table)

    _register_io(app)


def _register_io(app: typer.Typer) -> None:
    @app.command()
    def migrate(ctx: typer.Context) -> None:
        """Apply Postgres (Alembic) and ClickHouse migrations."""
        typer.echo(json.dumps(migrate_all(ctx.obj), default=str))

    @app.command()
    def emit(
        ctx: typer.Context,
        source: Annotated[str, typer.Argument(help="a JSON-lines file, or - for stdin")],
        quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
        writer: Annotated[Writer, typer.Option(
            "--as", help="who writes: producer (observation records only), worker (also "
            "commands and results) or admin (also decisions); see the topic catalog's "
            "authority")] = Writer.PRODUCER,
    ) -> None:
        """JSON lines → validate → Avro → Kafka; exit 0 when every line was accepted.

        As a producer (the default) only observation records (learning, build and error
        events) are accepted; other lines are rejected with the reason.
        """
        settings: Settings = ctx.obj
        wiring = wiring_for(settings)
        producer = wiring.producer("lvlup-emit")
        if source == "-":
            report = emit_lines(sys.stdin, producer, wiring.catalog, writer=writer)
        else:
            path = Path(source)
            if not path.is_file():
                raise LvlupError(f"no such file: {source}")
            with path.open(encoding="utf-8") as fh, Progress(
                "[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                TimeRemainingColumn(), console=Console(stderr=True),
                disable=quiet or path.stat().st_size < 1_000_000,
            ) as bar:
                task = bar.add_task(path.name, total=path.stat().st_size)
                report = emit_lines(fh, producer, wiring.catalog,
                                    progress=lambda n: bar.advance(task, n),
                                    writer=writer)
        producer.close()
        for rej in report.rejected:
            typer.echo(f"line {rej.line}: rejected: {rej.reason}", err=True)
        typer.echo(f"accepted {report.accepted}, rejected {len(report.rejected)}, "
                   f"failed {report.failed}")
        if not report.ok:
            raise typer.Exit(1)

    @app.command()
    def sql(
        ctx: typer.Context,
        query: Annotated[str, typer.Argument(help="one read-only query")],
        fmt: Annotated[str, typer.Option("--format", help="table | csv | json")] = "table",
    ) -> None:
        """Read-only ClickHouse query for analysts (chdb or the configured server)."""
        if fmt not in ("table", "csv", "json"):
            raise LvlupError(f"unknown format {fmt!r}: use table, csv or json")
        reader = open_reader(ctx.obj)
        try:
            result = reader.query(query)
        finally:
            reader.close()
        if fmt == "json":
            for item in result.dicts():
                typer.echo(json.dumps(item, default=str))
        elif fmt == "csv":
            writer = csv.writer(sys.stdout)
            writer.writerow(result.columns)
            writer.writerows(result.rows)
        else:
            table = Table(*result.columns)
            for row in result.rows:
                table.add_row(*(str(v) for v in row))
            Console().print(table)

