"""The sink process (``lvlup sink``): Postgres and/or ClickHouse sinks over every catalog
topic. The ClickHouse sink owns chdb here: it migrates, writes, and serves read queries to
the API and ``lvlup sql`` (docs/ARCHITECTURE.md, "chdb ownership")."""

from __future__ import annotations

import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import structlog

from infra.chaos.failpoints import writer_wrapper
from infra.supervisor import ChildSpec, Supervisor
from schemas.catalog import load_catalog
from sinks.app import (
    CLICKHOUSE_GROUP,
    POSTGRES_GROUP,
    build_sink,
    migrate_stores,
    postgres_engine,
)
from sinks.clickhouse.client import ClickHouse, open_clickhouse
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.owner import OwnerServer, owner_file, owner_token_file, query_limits
from sinks.runner import SinkRunner
from streams.errors import LvlupError
from streams.producer import codec_for
from streams.settings import Settings, child_environment

__all__ = ["postgres_member", "run_sinks", "sink_children"]

log = structlog.get_logger(__name__)


def run_sinks(settings: Settings, kind: str, stop: threading.Event, *,
              topics: list[str] | None = None, group_suffix: str = "") -> None:
    """Run the sinks of ``kind`` (postgres | clickhouse | all) until ``stop`` is set.

    ``topics`` defaults to every catalog topic; ``group_suffix`` is appended to the
    consumer groups (isolated runs: chaos, replay). Raises :class:`LvlupError` for an
    unknown kind; a sink that fails re-raises its error after the others were stopped.
    """
    if kind not in ("postgres", "clickhouse", "all"):
        raise LvlupError(f"unknown sink {kind!r}: postgres, clickhouse or all")
    codec = codec_for(settings.schemas)  # reads both framings when a registry is set
    topics = topics or list(load_catalog().names)
    wrap = writer_wrapper(settings)  # fault injection (lvlup chaos) only
    runners: list[SinkRunner] = []
    clickhouse: ClickHouse | None = None
    owner: OwnerServer | None = None
    if kind in ("postgres", "all"):
        migrate_stores(settings, None)
        runners.append(build_sink(settings, codec, topics, kind="postgres",
                                  engine=postgres_engine(settings),
                                  group=POSTGRES_GROUP + group_suffix, wrap_writer=wrap))
    if kind in ("clickhouse", "all"):
        clickhouse = open_clickhouse(settings.clickhouse, settings.chdb_path())
        migrate_up(clickhouse, settings.clickhouse.database)
        runners.append(build_sink(settings, codec, topics, kind="clickhouse",
                                  clickhouse=clickhouse, group=CLICKHOUSE_GROUP + group_suffix,
                                  wrap_writer=wrap))
        if settings.clickhouse.embedded:
            owner = OwnerServer(clickhouse, owner_file(settings),
                                token_path=owner_token_file(settings),
                                limits=query_limits(settings))
            owner.start()
    errors: list[BaseException] = []

    def guarded(runner: SinkRunner) -> None:
        try:
            runner.run()
        except BaseException as exc:
            errors.append(exc)
            stop.set()
            raise

    threads = [threading.Thread(target=guarded, args=(r,), name=f"sink-{r.writer.name}")
               for r in runners]
    for thread in threads:
        thread.start()
    log.info("sinks.running", kinds=[r.writer.name for r in runners], topics=len(topics))
    try:
        while not stop.wait(0.5):
            if not any(t.is_alive() for t in threads):
                break
    finally:
        for runner in runners:
            runner.stop()
        for thread in threads:
            thread.join(60)
        if owner is not None:
            owner.stop()
        if clickhouse is not None:
            clickhouse.close()
    if errors:
        raise errors[0]


def postgres_member(i: int) -> str:
    """The supervised name of the ``i``-th Postgres sink member (1-based): ``pg-sink``, then
    ``pg-sink-2`` …"""
    return "pg-sink" if i == 1 else f"pg-sink-{i}"


def sink_children(topics: Sequence[str], group_suffix: str, run_dir: Path,
                  overrides: Mapping[str, str] | None = None, *,
                  postgres_members: int = 1) -> Supervisor:
    """A (not yet started) supervisor of ``postgres_members`` Postgres sink processes (one
    consumer group; ``pg-sink`` first, then ``pg-sink-2`` …) and one ClickHouse sink process
    (``lvlup sink postgres|clickhouse``) over ``topics``, their consumer groups suffixed with
    ``group_suffix``; ``overrides`` are ``LVLUP_*`` settings for the children (a scratch
    database, chdb directory, batch window). Isolated runs use it: chaos, the benchmarks."""
    lvlup = (sys.executable, "-m", "infra.cli", "sink")
    opts = ("--topics", ",".join(topics), "--group-suffix", group_suffix)
    specs = [ChildSpec(postgres_member(i), (*lvlup, "postgres", *opts))
             for i in range(1, postgres_members + 1)]
    specs.append(ChildSpec("ch-sink", (*lvlup, "clickhouse", *opts)))
    return Supervisor(specs, child_environment(overrides), run_dir)
