"""``lvlup replay rebuild | diff | reset-group | decisions``: audits by replaying the log.

``decisions``: :mod:`infra.cli.decisionscmd` (custody decisions under another policy).

Times (``--from``, ``--to``, ``--to-datetime``) are ISO-8601 (``2026-11-22T10:00:00Z``; no
zone means UTC) or milliseconds since the epoch, and mean Kafka record time. With chdb,
rebuild and diff need the ClickHouse data directory to themselves: stop the ClickHouse sink
first, or compare Postgres only (``--views 'postgres.*'``). The log is decoded with the codec
the live sinks use (the process wiring, :func:`streams.wiring.wiring_for`), built
here and passed down.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra.cli.decisionscmd import decisions
from streams.errors import LvlupError
from streams.settings import Settings
from streams.trialselect import parse_time_ms
from streams.wiring import wiring_for

__all__ = ["diff", "parse_time", "rebuild", "register", "reset_group"]

_VIEWS_HELP = ("views to compare: names or fnmatch patterns over postgres.<table> and "
               "clickhouse.<table|view> (repeat or comma-separate); default all")


def parse_time(text: str) -> int:
    """ISO-8601 (naive = UTC) or epoch milliseconds → milliseconds since the epoch, UTC
    (:func:`streams.trialselect.parse_time_ms`). Raises :class:`LvlupError` for anything
    else."""
    return parse_time_ms(text)


def _patterns(views: list[str]) -> tuple[str, ...]:
    return tuple(p.strip() for v in views for p in v.split(",") if p.strip())


@contextmanager
def _clickhouse(settings: Settings, patterns: tuple[str, ...]) -> Iterator[Any]:
    """The live ClickHouse (closed afterwards), or None when every pattern names Postgres
    views only."""
    from sinks.clickhouse.client import open_clickhouse
    from sinks.errors import ChdbLocked
    from sinks.postgres.models import VIEW_TABLES

    tables = {t.name for t in VIEW_TABLES}
    if patterns and all(p.startswith("postgres.") or p in tables for p in patterns):
        yield None
        return
    try:
        client = open_clickhouse(settings.clickhouse, settings.chdb_path())
    except ChdbLocked as exc:
        raise LvlupError(f"{exc}; stop the ClickHouse sink, or compare Postgres only with "
                         "--views 'postgres.*'") from exc
    try:
        yield client
    finally:
        client.close()


def _request(*, views: list[str], since: str | None, until: str | None,
             topic_prefix: str, group_suffix: str, keep_shadow: bool) -> Any:
    from sinks.app import CLICKHOUSE_GROUP, POSTGRES_GROUP
    from sinks.replay.engine import ReplayRequest

    return ReplayRequest(
        views=_patterns(views), since_ms=None if since is None else parse_time(since),
        until_ms=None if until is None else parse_time(until), topic_prefix=topic_prefix,
        postgres_group=POSTGRES_GROUP + group_suffix,
        clickhouse_group=CLICKHOUSE_GROUP + group_suffix, keep_shadow=keep_shadow)


TopicPrefix = Annotated[str, typer.Option(help="prefix of the topics (isolated runs)")]
GroupSuffix = Annotated[str, typer.Option(help="suffix of the live sinks' consumer groups, as "
                                               "given to lvlup sink")]
Views = Annotated[list[str], typer.Option("--views", help=_VIEWS_HELP)]
KeepShadow = Annotated[bool, typer.Option(help="keep the shadow databases")]


def rebuild(
    ctx: typer.Context,
    *,
    views: Views = [],  # noqa: B006 - typer reads the default, never mutates it
    since: Annotated[str | None, typer.Option("--from", help="window start")] = None,
    until: Annotated[str | None, typer.Option("--to", help="window end")] = None,
    certificate: Annotated[Path, typer.Option(help="where to write the certificate")] =
        Path("replay-certificate.json"),
    keep_shadow: KeepShadow = False,
    topic_prefix: TopicPrefix = "",
    group_suffix: GroupSuffix = "",
) -> None:
    """Rebuild the views from the log in shadow stores and compare them with the live ones.

    Writes a certificate; exits 1 naming the views and keys that differ."""
    from sinks.replay.certificate import rebuild as run_rebuild

    settings: Settings = ctx.obj
    request = _request(views=views, since=since, until=until, topic_prefix=topic_prefix,
                       group_suffix=group_suffix, keep_shadow=keep_shadow)
    with _clickhouse(settings, request.views) as clickhouse:
        cert = run_rebuild(settings, request, clickhouse=clickhouse,
                           wiring=wiring_for(settings))  # the live sinks' codec
    certificate.write_text(json.dumps(cert.to_json(), indent=1, default=str))
    table = Table("view", "rows live", "rows shadow", "checksum", title="replay rebuild")
    for view, v in cert.views.items():
        same = ("unprovable" if v.get("unprovable") else
                "equal" if v["equal"] else "DIFFERS")
        table.add_row(view, str(v["rows_live"]), str(v["rows_shadow"]), same)
    Console().print(table)
    for view, keys in cert.mismatches.items():
        typer.echo(f"mismatch in {view}: {', '.join(keys[:20])}"
                   + (f" (+{len(keys) - 20} more)" if len(keys) > 20 else ""), err=True)
    for view, why in cert.unprovable.items():
        typer.echo(f"unprovable {view}: {why}", err=True)
    for view, v in cert.views.items():
        if v.get("approximate_columns"):
            typer.echo(f"note: {view}: {', '.join(v['approximate_columns'])} are sampled "
                       "(quantile) and not compared", err=True)
    if not cert.records["read"]:
        typer.echo("note: no record replayed: the live sinks have stored no position on these "
                   "topics (wrong --group-suffix or --topic-prefix?)", err=True)
    typer.echo(f"verdict: {cert.verdict}; {cert.records['read']} records replayed; "
               f"certificate {certificate}")
    if not cert.equal:
        raise typer.Exit(1)

def diff(
    ctx: typer.Context,
    *,
    since: Annotated[str, typer.Option("--from", help="window start")],
    until: Annotated[str | None, typer.Option("--to", help="window end (default: the "
                                                          "live position)")] = None,
    views: Views = [],  # noqa: B006
    fmt: Annotated[str, typer.Option("--format", help="md | json")] = "md",
    out: Annotated[Path | None, typer.Option(help="write the report here (default: "
                                                  "stdout)")] = None,
    reinfer: Annotated[bool, typer.Option(help="answer the window's inference requests "
                                               "again with the model and report "
                                               "differences")] = False,
    reinfer_max: Annotated[int, typer.Option(min=1, help="requests answered again")] = 20,
    keep_shadow: KeepShadow = False,
    topic_prefix: TopicPrefix = "",
    group_suffix: GroupSuffix = "",
) -> None:
    """Replay a window under the current code and report what differs from live.

    Rows added/removed/changed per view and per agent, and custody verdict flips."""
    from agents.custody.runs import verdict_for
    from sinks.replay.diff import custody_rescorer, render_markdown, replay_diff
    from sinks.replay.engine import ReplayCode

    if fmt not in ("md", "json"):
        raise LvlupError(f"--format must be md or json, not {fmt!r}")
    settings: Settings = ctx.obj
    request = _request(views=views, since=since, until=until, topic_prefix=topic_prefix,
                       group_suffix=group_suffix, keep_shadow=keep_shadow)
    with _clickhouse(settings, request.views) as clickhouse:
        report = replay_diff(settings, request, clickhouse=clickhouse,
                             code=ReplayCode(rescore=custody_rescorer(verdict_for)),
                             wiring=wiring_for(settings))
    if reinfer:
        report.reinfer = _reinfer(settings, request, reinfer_max)
    body = (render_markdown(report) if fmt == "md"
            else json.dumps(report.to_json(), indent=1, default=str))
    if out is None:
        typer.echo(body)
    else:
        out.write_text(body)
        typer.echo(f"{report.changes} rows differ, {len(report.verdict_flips)} verdict "
                   f"flips; report {out}")

def reset_group(
    ctx: typer.Context,
    group: Annotated[str, typer.Argument(help="the consumer group")],
    *,
    to_datetime: Annotated[str, typer.Option("--to-datetime", help="the time to move "
                                                                   "to")],
    topic: Annotated[list[str], typer.Option(help="only these topics (default: every "
                                                  "partition the group committed)")]
        = [],  # noqa: B006
    execute: Annotated[bool, typer.Option(help="commit the new offsets (default: a dry "
                                               "run)")] = False,
) -> None:
    """Move GROUP's committed offsets to the first records at or after a time.

    A dry run unless --execute; refused while the group has active members."""
    from sinks.replay.groups import execute_reset, plan_reset, resume_note

    bootstrap = ctx.obj.kafka.bootstrap()
    plan = plan_reset(bootstrap, group, parse_time(to_datetime), topics=topic)
    table = Table("topic", "partition", "current", "target", "delta",
                  title=f"{group} ({plan.state.lower()})")
    for m in plan.moves:
        table.add_row(m.topic, str(m.partition), "-" if m.current is None else str(m.current),
                      str(m.target), "-" if m.delta is None else f"{m.delta:+d}")
    Console().print(table)
    note = resume_note(group)
    if note:
        typer.echo(f"note: {note}", err=True)
    if not execute:
        typer.echo("dry run: nothing changed; pass --execute to commit these offsets")
        return
    execute_reset(bootstrap, plan)
    typer.echo(f"committed {len(plan.moves)} offsets for {group}")


def _reinfer(settings: Settings, request: Any, limit: int) -> dict[str, Any]:
    """Answer the window's recorded requests again with the configured model."""
    from inference.factory import build_service
    from inference.kafka_worker import request_fields
    from inference.recorded import load_recorded
    from sinks.replay.reinfer import read_requests, run_reinfer

    wiring = wiring_for(settings)
    requests = read_requests(wiring, since_ms=request.since_ms, until_ms=request.until_ms,
                             topic_prefix=request.topic_prefix)
    responses = (request.topic_prefix
                 + wiring.catalog.for_record("inference_response").name)
    recorded = load_recorded(wiring.bootstrap, wiring.codec, responses)
    service = build_service(settings)
    report = run_reinfer(requests, recorded, lambda rec: service.handle(request_fields(dict(rec))),
                         limit=limit)
    return report.to_json()


def register(app: typer.Typer) -> None:
    """Add ``lvlup replay`` to ``app``."""
    replay = typer.Typer(help="Replay the log for audits.", no_args_is_help=True)
    app.add_typer(replay, name="replay")
    replay.command("rebuild")(rebuild)
    replay.command("diff")(diff)
    replay.command("reset-group")(reset_group)
    replay.command("decisions")(decisions)
