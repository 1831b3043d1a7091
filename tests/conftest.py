"""Shared fixtures: the real local stack (started by the project's own code), unique topics.

Tests run against their own data dir and ports (``.lvlup-test``, Kafka 49092, Postgres 55433)
so a running ``make run`` is not disturbed. ``LVLUP_*`` variables already set (an existing
Kafka, Postgres or ClickHouse) win. The stack is stopped at the end of the session if this
session started it, unless ``LVLUP_TEST_KEEP_STACK=1``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

_TEST_ENV = {
    "LVLUP_DATA_DIR": str(ROOT / ".lvlup-test"),
    "LVLUP_KAFKA__PORT": "49092",
    "LVLUP_KAFKA__CONTROLLER_PORT": "49093",
    "LVLUP_POSTGRES__PORT": "55433",
}
for _key, _value in _TEST_ENV.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from streams.settings import Settings

    return Settings()


@pytest.fixture(scope="session")
def stack(settings):  # type: ignore[no-untyped-def]
    """The running stack (Kafka, Postgres; chdb is per test). Yields the settings."""
    from infra.kafka import KafkaBroker
    from infra.postgres import EmbeddedPostgres
    from infra.stack import stack_down, stack_up

    was_running = (not settings.kafka.embedded or KafkaBroker(settings).pid() is not None) and (
        not settings.postgres.embedded or EmbeddedPostgres(settings).running()
    )
    stack_up(settings)
    yield settings
    if not was_running and os.environ.get("LVLUP_TEST_KEEP_STACK") != "1":
        stack_down(settings)


@pytest.fixture
def bootstrap(stack) -> str:  # type: ignore[no-untyped-def]
    return str(stack.kafka.bootstrap())


@pytest.fixture
def make_topic(bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory: ``make_topic(partitions=3, config=None, prefix="t")`` → a new unique topic."""
    from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics

    made: list[str] = []

    def _make(partitions: int = 3, config: dict[str, str] | None = None, prefix: str = "t") -> str:
        name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
        create_topics(bootstrap, [NewTopicSpec(name, partitions, 1, config or {})])
        made.append(name)
        return name

    yield _make
    delete_topics(bootstrap, made)
