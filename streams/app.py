"""The Faust app factory: every agent worker is built here from :class:`Settings`.

Choices, with their sources:

- ``broker="lvlup://…"`` → :mod:`streams.faust_transport`: producers with ``acks=all`` and
  idempotence on, at-least-once processing (not Faust's ``exactly_once``: faust-streaming#517).
- ``agent_supervisor=mode.CrashingSupervisor``: an agent that dies crashes the worker, so the
  process supervisor (``lvlup run``) restarts it, instead of leaving a worker that looks alive
  but consumes nothing (faust-streaming/faust#175).
- ``topic_allow_declare=False`` for source topics is not a setting; instead every source topic
  is created from the catalog before a worker starts (Faust does not create source topics and
  an auto-created one fails with ``PartitionsMismatch``). The broker refuses auto-creation.
- Tables use ``memory://`` stores rebuilt from their compacted changelog topics on start.
- ``broker_session_timeout`` 10 s → a worker joins its group in ~7 s (not ~34 s at 60 s).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import faust
import mode

from streams.settings import Settings

__all__ = ["create_faust_app", "faust_app", "recovered"]


def create_faust_app(
    settings: Settings,
    app_id: str,
    *,
    partitions: int = 6,
    web_port: int | None = None,
    **overrides: Any,
) -> faust.App:
    """A configured :class:`faust.App` named ``app_id`` (also its consumer group).

    ``partitions`` is the default for tables' changelog topics and must equal the partition
    count of the source topics they are co-partitioned with. ``web_port`` enables Faust's web
    server (off by default, so several workers can share a machine). ``overrides`` are passed
    to :class:`faust.App` last.
    """
    return faust_app(settings.kafka.bootstrap(), app_id, settings.data_dir / "faust" / app_id,
                     partitions=partitions, web_port=web_port, **overrides)


def faust_app(bootstrap: str, app_id: str, datadir: Path, *, partitions: int = 6,
              web_port: int | None = None, **overrides: Any) -> faust.App:
    """:func:`create_faust_app` from its parts: the Kafka ``bootstrap`` address and the app's
    data directory ``datadir`` (created if missing)."""
    datadir = datadir.resolve()
    datadir.mkdir(parents=True, exist_ok=True)
    options: dict[str, Any] = {
        "broker": f"lvlup://{bootstrap}",
        "store": "memory://",
        "topic_partitions": partitions,
        "topic_replication_factor": 1,
        "producer_acks": -1,
        "processing_guarantee": "at_least_once",
        "agent_supervisor": mode.CrashingSupervisor,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 1.0,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": 16_384,
        "web_enabled": web_port is not None,
        "datadir": str(datadir),
        "autodiscover": False,
        "logging_config": None,
    }
    if web_port is not None:
        options["web_port"] = web_port
        options["web_bind"] = "127.0.0.1"
    options.update(overrides)
    return faust.App(app_id, **options)


async def recovered(app: faust.App) -> None:
    """Return once ``app``'s tables are restored (at once when no recovery is running).

    Call it before handling each stream event that reads or writes a table. faust-streaming
    resumes the consumer's flow while a rebalance's recovery is still reading changelogs, and
    an event handled then sees a table that is not restored yet — it writes a count from zero,
    and that wrong value goes to the changelog too (seen as a restarted counter forwarding
    stale counts for a few keys, ~1 restart in 20 under load).
    """
    recovery = app.tables.recovery  # type: ignore[attr-defined]  # TableManager, not its ABC
    while app.in_recovery or not recovery.completed.is_set():
        await asyncio.sleep(0.05)  # mode's events cannot tell a later recovery from the first
