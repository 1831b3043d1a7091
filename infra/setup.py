"""What ``lvlup up`` does after the services run: topics from the catalog, migrations."""

from __future__ import annotations

from schemas.catalog import load_catalog
from sinks.app import migrate_stores
from sinks.clickhouse.client import open_clickhouse
from sinks.clickhouse.owner import owner_file
from sinks.errors import ChdbLocked
from streams.kafka_admin import NewTopicSpec, create_topics
from streams.settings import Settings

__all__ = ["create_catalog_topics", "migrate_all"]


def create_catalog_topics(settings: Settings) -> dict[str, str]:
    """Create every catalog topic (idempotent); ``{name: "created" | "exists"}``."""
    specs = [NewTopicSpec(t.name, t.partitions, t.replication_factor, t.config())
             for t in load_catalog().topics]
    return create_topics(settings.kafka.bootstrap(), specs)


def migrate_all(settings: Settings) -> dict[str, object]:
    """Postgres and ClickHouse migrations. With chdb owned by a running sink, ClickHouse is
    left to that owner (it migrates at start)."""
    try:
        clickhouse = open_clickhouse(settings.clickhouse, settings.chdb_path())
    except ChdbLocked:
        done = migrate_stores(settings, None)
        done["clickhouse"] = f"skipped: owned by a running process ({owner_file(settings)})"
        return done
    try:
        return migrate_stores(settings, clickhouse)
    finally:
        clickhouse.close()
