"""``lvlup run [--duration S] [--demo]``: the whole platform, supervised, with a live status
(``--demo`` adds the labelled synthetic sample, :mod:`infra.run`)."""

from __future__ import annotations

import itertools
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Annotated

import httpx
import typer
from prometheus_client import CollectorRegistry
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from infra.custody_summary import render_custody
from infra.health import ConsumerHealth, HealthReading
from infra.run import (
    PLANTED,
    Summary,
    bootstrap,
    child_env,
    child_specs,
    collect_summary,
    sample_records,
)
from infra.setup import create_catalog_topics, migrate_all
from infra.supervisor import Supervisor
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from sinks.app import postgres_engine
from streams.producer import EventProducer
from streams.settings import Settings

__all__ = ["register"]

LOOK_FURTHER = """look further:
  lvlup sql "SELECT agent_id, sum(events) FROM lvlup.learning_by_agent_topic_day GROUP BY ALL"
  lvlup sql "SELECT record_type, count() FROM lvlup.events FINAL GROUP BY ALL"
  lvlup dlq list
"""


def _status(sup: Supervisor, summary: Summary, rate: float, health: HealthReading) -> Group:
    procs = Table("process", "state", "pid", "restarts", title="processes")
    for c in sup.children:
        procs.add_row(c.spec.name, c.state, str(c.proc.pid if c.proc else "-"), str(c.restarts))
    groups = Table("consumer group", "lag", "stuck partitions", title="consumers")
    for group, lag in health.lag.items():
        stuck = [f"{s.topic}[{s.partition}]" for s in health.stuck if s.group == group]
        groups.add_row(group, str(lag), ", ".join(stuck) or "-")
    views = Table("view", "rows", title=f"views  ·  {rate:,.0f} events/s on the log")
    for name, rows in summary.rows_per_view.items():
        if rows:
            views.add_row(name, str(rows))
    cyc = summary.last_cycle
    last = (f"last cycle {cyc.get('cycle_id')}: {cyc.get('status')}, "
            f"{cyc.get('success_count')} insights" if cyc else "no learning cycle finished yet")
    tok = summary.tokens
    budget = (f"tokens {int(tok.get('prompt_tokens', 0)) + int(tok.get('completion_tokens', 0))}"
              f" in {int(tok.get('requests', 0))} requests, ${tok.get('cost_usd', 0):.4f}")
    return Group(procs, groups, views, f"{last}  ·  {budget}  ·  unhandled errors "
                               f"{summary.unhandled_errors}")


def _api_answers(port: int) -> bool:
    """True when the API child answers ``GET /api/health`` with 200 (2 s timeout)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False  # not (yet) listening: asked again at the next tick


def _print_summary(console: Console, summary: Summary, settings: Settings,
                   health: HealthReading, api_port: int) -> None:
    table = Table("topic", "records", title="records per topic")
    for name, n in summary.records_per_topic.items():
        if n:
            table.add_row(name, str(n))
    console.print(table)
    views = Table("view", "rows", "watermark (max occurred_at)", title="Postgres views")
    for name, n in summary.rows_per_view.items():
        views.add_row(name, str(n), summary.watermarks.get(name, ""))
    console.print(views)
    console.print(f"last learning cycle: {summary.last_cycle or 'none'}")
    console.print(f"finished during this run: {summary.cycles_finished} learning cycles, "
                  f"{summary.custody_runs} custody runs")
    console.print(f"custody items answered with memory during this run: "
                  f"{summary.custody_items_with_memory} of {summary.custody_items}, "
                  f"{summary.custody_items_citing_memory} citing recalled knowledge")
    for line in render_custody(summary.custody):
        console.print(line, highlight=False)
    memory = Table("agent", "memory entries", "newest entry (kind, source)", title="what the "
                   "agents learned (agent_memory)")
    for agent, kinds in summary.memory.items():
        kind, source, excerpt = summary.memory_latest.get(agent, ("", "", ""))
        memory.add_row(agent, ", ".join(f"{n} {k}s" for k, n in kinds.items()),
                       f"{kind} from {source}: {excerpt}" if kind else "-")
    console.print(memory if summary.memory else "agent memory: empty")
    _print_learning_choices(console, summary)
    console.print(f"planted finding ({PLANTED}): "
                  f"{', '.join(summary.planted_findings) or 'not found'}")
    console.print(f"proposals by status: {summary.proposals or 'none'}")
    gated = summary.proposals_gated
    console.print(f"proposals through the custody gate during this run: "
                  f"{sum(gated.values())}" + (f" {gated}" if gated else ""))
    console.print(f"API answered /api/health: {summary.api_answered}")
    console.print(f"tokens: {summary.tokens}")
    console.print(f"model answers during this run: {summary.inference_answers}, at most "
                  f"{summary.inference_peak_in_flight} in service at once "
                  f"(model.parallel {settings.model.parallel})")
    console.print(f"dead-letter records: {summary.dlq_records or 0}; worker restarts: "
                  f"{summary.restarts}")
    console.print(f"unhandled errors: {summary.unhandled_errors}")
    if health.stuck:
        console.print("stuck consumers: " + ", ".join(
            f"{s.group} {s.topic}[{s.partition}] lag {s.lag}" for s in health.stuck))
    base = f"http://127.0.0.1:{api_port}"
    console.print(LOOK_FURTHER
                  + f"  API: {base}/docs  ·  dashboard: {base}/dashboard (log in with the "
                  "token of `lvlup keys create --name me --scope read`)\n"
                  + f"  data: {settings.data_dir.resolve()}  ·  logs: {settings.run_dir()}")


def _print_learning_choices(console: Console, summary: Summary) -> None:
    """Judged transfers and weakness-targeted topics per agent, and the demo sample line."""
    tr = summary.transfers
    console.print(f"knowledge transfers during this run: "
                  f"{sum(a['accepted'] for a in tr.values())} accepted, "
                  f"{sum(a['rejected'] for a in tr.values())} rejected")
    for agent, t in tr.items():
        why = ", ".join(f"{r} {n}" for r, n in sorted(t["reasons"].items()))
        console.print(f"  transfers to {agent}: {t['accepted']} accepted, {t['rejected']} "
                      f"rejected" + (f" ({why})" if why else ""))
    targeted = summary.targeted_topics
    console.print(f"topics chosen from custody weaknesses during this run: "
                  f"{sum(len(v) for v in targeted.values())}")
    for agent, chosen in targeted.items():
        for topic, reason in chosen:
            console.print(f"  {agent}: {topic!r} ({reason})")
    if summary.demo_sample is None:
        console.print("demo sample: none (a plain run; `lvlup run --demo` adds it)")
    else:
        console.print(f"demo sample: {summary.demo_sample} records (producer lvlup.demo, "
                      "agents demo-*; never in the real agents' cycles, memory or custody)")


def register(app: typer.Typer) -> None:
    """Add ``lvlup run`` to ``app``."""

    @app.command()
    def run(
        ctx: typer.Context,
        duration: Annotated[float, typer.Option(help="stop after this many seconds "
                                                     "(0 = until Ctrl-C)", min=0)] = 0,
        api_port: Annotated[int, typer.Option(help="port of the HTTP API", min=1,
                                              max=65535)] = 8000,
        demo: Annotated[bool, typer.Option(
            "--demo", help="also emit the labelled synthetic sample (2,000 records, agents "
                           "demo-*) into the views, once")] = False,
    ) -> None:
        """The main job: stack + agents + inference + sinks (+ API), until stopped."""
        from infra.stack import stack_up

        settings: Settings = ctx.obj
        console = Console()
        stack_up(settings)
        create_catalog_topics(settings)
        migrate_all(settings)
        producer = EventProducer(settings.kafka.bootstrap(), load_codec(), load_catalog(),
                                 name="lvlup run")
        sent = bootstrap(settings, producer, demo=demo)
        console.print(f"first start: {sent or 'nothing to add'}")
        producer.close()
        demo_sample = sample_records() if demo else None
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        sup = Supervisor(child_specs(settings, api_port), child_env(settings), settings.run_dir())
        engine = postgres_engine(settings)
        sup.start()
        started, since = time.monotonic(), datetime.now(UTC)
        summary = collect_summary(settings, engine, sup, since, demo_sample=demo_sample)
        api_answered: bool | None = None
        watch = ConsumerHealth(settings.kafka.bootstrap(), load_catalog(), CollectorRegistry())
        health = HealthReading()
        last_total, last_at = sum(summary.records_per_topic.values()), time.monotonic()
        try:
            with Live(_status(sup, summary, 0.0, health), console=console, refresh_per_second=1,
                      transient=not sys.stdout.isatty()) as live:
                for tick in itertools.count(1):
                    if stop.wait(2.0):
                        break
                    sup.poll()
                    summary = collect_summary(settings, engine, sup, since,
                                              demo_sample=demo_sample)
                    if tick % 5 == 0:  # every 10 s: lag, the stuck-consumer watchdog, the API
                        health = watch.read()
                        api_answered = api_answered or _api_answers(api_port)
                    summary.api_answered = api_answered
                    total, now = sum(summary.records_per_topic.values()), time.monotonic()
                    live.update(_status(sup, summary, (total - last_total) / (now - last_at),
                                        health))
                    last_total, last_at = total, now
                    if duration and now - started >= duration:
                        break
        finally:
            sup.stop()
        summary = collect_summary(settings, engine, sup, since, demo_sample=demo_sample)
        summary.api_answered = api_answered
        _print_summary(console, summary, settings, health, api_port)
        engine.dispose()
        if summary.unhandled_errors:
            raise typer.Exit(1)
