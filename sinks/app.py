"""Builds the sink processes' parts from :class:`Settings` (one factory, everything injected).

Consumer groups: ``lvlup.sinks.postgres`` and ``lvlup.sinks.clickhouse``; their dead-letter
topics ``<group>.dlq``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine, create_engine

from schemas.codec import Codec
from schemas.groups import ConsumerGroup
from sinks.clickhouse.client import ClickHouse
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.postgres.migrate import upgrade
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch
from sinks.runner import SinkConfig, SinkRunner, SinkWriter
from streams.dlq import DeadLetterQueue, DlqPolicy, open_dlq
from streams.settings import Settings

__all__ = [
    "CLICKHOUSE_GROUP",
    "POSTGRES_GROUP",
    "build_sink",
    "migrate_stores",
    "postgres_engine",
]

POSTGRES_GROUP = ConsumerGroup.POSTGRES_SINK
CLICKHOUSE_GROUP = ConsumerGroup.CLICKHOUSE_SINK


def postgres_engine(settings: Settings) -> Engine:
    """An engine for the configured Postgres (pre-ping: a restarted server is noticed)."""
    return create_engine(settings.postgres.sqlalchemy_url(), pool_pre_ping=True, pool_size=4,
                         max_overflow=4)


def migrate_stores(settings: Settings, clickhouse: ClickHouse | None) -> dict[str, object]:
    """Apply Postgres (Alembic) and ClickHouse migrations; returns what was done."""
    upgrade(settings.postgres.sqlalchemy_url())
    done: dict[str, object] = {"postgres": "head"}
    if clickhouse is not None:
        done["clickhouse"] = migrate_up(clickhouse, settings.clickhouse.database)
    return done


def _dlq(settings: Settings, group: str) -> DeadLetterQueue:
    s = settings.sinks
    policy = DlqPolicy(max_consecutive=s.dlq_max_consecutive, max_ratio=s.dlq_max_ratio,
                       window=s.dlq_window)
    return open_dlq(settings.kafka.bootstrap(), group, policy)


def build_sink(
    settings: Settings,
    codec: Codec,
    topics: Sequence[str],
    *,
    kind: str,
    engine: Engine | None = None,
    clickhouse: ClickHouse | None = None,
    group: str | None = None,
    after_write: Callable[[Batch], None] | None = None,
    wrap_writer: Callable[[SinkWriter], SinkWriter] | None = None,
) -> SinkRunner:
    """A runner for ``kind`` ``"postgres"`` (needs ``engine``) or ``"clickhouse"`` (needs
    ``clickhouse``) over ``topics``. ``wrap_writer`` (from the process's root; fault injection
    passes :func:`infra.chaos.failpoints.writer_wrapper`) wraps the store writer. Raises
    ``ValueError`` for an unknown kind or a missing collaborator."""
    writer: SinkWriter
    if kind == "postgres":
        if engine is None:
            raise ValueError("the postgres sink needs an engine")
        writer = PostgresWriter(engine, build_projections())
        group = group or POSTGRES_GROUP
    elif kind == "clickhouse":
        if clickhouse is None:
            raise ValueError("the clickhouse sink needs a ClickHouse client")
        writer = ClickHouseWriter(clickhouse, settings.clickhouse.database)
        group = group or CLICKHOUSE_GROUP
    else:
        raise ValueError(f"unknown sink kind {kind!r}")
    if wrap_writer is not None:
        writer = wrap_writer(writer)
    s = settings.sinks
    wait_ms = s.clickhouse_max_wait_ms if kind == "clickhouse" else s.max_wait_ms
    drain_s = None if kind == "clickhouse" or s.drain_ms is None else s.drain_ms / 1000
    config = SinkConfig(group=group, topics=tuple(topics), max_batch=s.max_batch,
                        max_wait_s=wait_ms / 1000, drain_s=drain_s, retry_max_s=s.retry_max_s)
    return SinkRunner(settings.kafka.bootstrap(), config, writer, codec, _dlq(settings, group),
                      after_write=after_write)
