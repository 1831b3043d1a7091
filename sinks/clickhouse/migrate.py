"""Numbered ClickHouse migrations with forward and backward steps (Snuba's model).

``sinks/clickhouse/migrations/NNNN_name.up.sql`` and ``NNNN_name.down.sql``; statements are
separated by ``;`` at a line end, ``{db}`` is the database. Applied versions are recorded in
``{db}.schema_migrations``. The same SQL runs on chdb and on a ClickHouse server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.resources import files

from sinks.clickhouse.client import ClickHouse
from sinks.errors import QueryError

__all__ = ["Migration", "applied_versions", "load_migrations", "migrate_down", "migrate_up"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(up|down)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One numbered migration: ``version``, ``name``, forward and backward SQL."""

    version: int
    name: str
    up: str
    down: str


def _statements(sql: str, database: str) -> list[str]:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return [s.strip().format(db=f"`{database}`") for s in re.split(r";\s*\n", body) if s.strip()]


def load_migrations() -> list[Migration]:
    """Every migration shipped in the package, in version order.

    Raises :class:`QueryError` when a version lacks its up or down file.
    """
    folder = files("sinks.clickhouse").joinpath("migrations")
    parts: dict[tuple[int, str], dict[str, str]] = {}
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            key = (int(match.group(1)), match.group(2))
            parts.setdefault(key, {})[match.group(3)] = entry.read_text()
    out = []
    for (version, name), sql in sorted(parts.items()):
        if set(sql) != {"up", "down"}:
            raise QueryError(f"ClickHouse migration {version:04d}_{name} lacks its up or down file")
        out.append(Migration(version, name, sql["up"], sql["down"]))
    return out


def _ensure_table(client: ClickHouse, database: str) -> None:
    client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    client.command(
        f"CREATE TABLE IF NOT EXISTS `{database}`.schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) "
        "ENGINE = MergeTree ORDER BY version"
    )


def applied_versions(client: ClickHouse, database: str) -> list[int]:
    """Versions applied to ``database``, ascending."""
    _ensure_table(client, database)
    # database: an identifier validated by ClickHouseSettings; versions and names: our files
    res = client.query(f"SELECT version FROM `{database}`.schema_migrations ORDER BY version")  # noqa: S608
    return [int(r[0]) for r in res.rows]


def migrate_up(client: ClickHouse, database: str, target: int | None = None) -> list[int]:
    """Apply pending migrations up to ``target`` (all when None); returns versions applied."""
    done = set(applied_versions(client, database))
    applied = []
    for mig in load_migrations():
        if mig.version in done or (target is not None and mig.version > target):
            continue
        for stmt in _statements(mig.up, database):
            client.command(stmt)
        client.command(
            f"INSERT INTO `{database}`.schema_migrations (version, name) "  # noqa: S608
            f"VALUES ({mig.version}, '{mig.name}')"
        )
        applied.append(mig.version)
    return applied


def migrate_down(client: ClickHouse, database: str, target: int) -> list[int]:
    """Undo applied migrations above ``target`` (0 = all), newest first; returns versions."""
    done = set(applied_versions(client, database))
    undone = []
    for mig in reversed(load_migrations()):
        if mig.version not in done or mig.version <= target:
            continue
        for stmt in _statements(mig.down, database):
            client.command(stmt)
        client.command(
            f"ALTER TABLE `{database}`.schema_migrations DELETE WHERE version = {mig.version} "
            "SETTINGS mutations_sync = 1"
        )
        undone.append(mig.version)
    return undone
