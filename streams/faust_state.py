"""A serial worker's state as a changelog-backed Faust table (single partition, JSON values).

The serial workers (custody, proposals, conquest: :class:`~streams.loop.SerialLoop` over
:class:`~streams.faust_consumer.FaustRecordConsumer`) keep their state — levels, XP, Elo,
applied runs, build durations — in one Faust ``GlobalTable`` per worker, restored by Faust's
recovery from its compacted changelog topic ``<group>-<name>-changelog`` when the worker
starts, instead of folding every record the worker ever wrote.

Why the writes do not go through ``table[key] = value``: Faust sends a table write with
``send_soon`` into its producer buffer and gives no delivery confirmation, and
``Producer.flush()`` returns after 0.1 s without a sent message even when the buffer is not
empty (faust/transport/producer.py, ``ProducerBuffer.flush_atmost``). A worker commits its
input offset right after its handler returns, so a state write still in that buffer would
be lost by a crash after the commit. :meth:`ChangelogState.write` produces each change to the
changelog itself and returns only once the broker acknowledged it (``acks=all``, idempotent
producer: :mod:`streams.faust_transport`); the table is the reader that restores them.

Ordering: the changelog has **one partition**, and :meth:`ChangelogState.write` sends one
change after the other, each confirmed before the next. A crash therefore leaves a prefix of
a worker's writes on the log, so a worker that writes its "this input is applied" marker last
never restores a marker without the state it vouches for.

Values are JSON (:func:`json.dumps`, ``allow_nan`` as Python's default); keys are strings. A
value of ``None`` is written as JSON ``null`` (not a tombstone), so a key's newest value always
wins after compaction (Kafka's log compaction keeps the newest record of each key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import faust
from aiokafka.errors import KafkaError

from streams.errors import LvlupError
from streams.kafka_admin import NewTopicSpec

__all__ = ["SEEDED", "ChangelogState", "StateTable"]

#: the key a worker writes last when it seeded its table from the log (a table without it is
#: seeded again: a crash mid-seed leaves no half state that looks complete)
SEEDED = "meta:seeded"


class StateTable(Protocol):
    """What a serial worker needs of its state table: :class:`ChangelogState` on Kafka,
    ``streams.testing.MemoryStateTable`` in unit tests."""

    def snapshot(self) -> dict[str, Any]:
        """Every key's newest value (once restored)."""

    async def write(self, changes: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Store ``changes`` in order; returns once they are durable."""


class ChangelogState:
    """One worker's state table (module doc). ``name`` is the table's name within its app.

    Declared on an app by :meth:`declare` (done by
    :class:`~streams.faust_consumer.FaustRecordConsumer`), read with :meth:`snapshot` once
    the app's recovery finished, written with :meth:`write`.
    """

    def __init__(self, name: str = "state") -> None:
        self.name = name
        self._table: Any = None
        self._app_id: str | None = None
        self._restored = False

    def declare(self, app: faust.App) -> None:
        """Add the table to ``app`` (before the app starts)."""
        self._app_id = str(app.conf.id)
        self._restored = False
        changelog = app.topic(
            self.changelog_topic(),
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=1,
            compacting=True,
        )
        self._table = app.GlobalTable(
            self.name, partitions=1, key_type=bytes, value_type=bytes, changelog_topic=changelog
        )

    def changelog_spec(self, app_id: str) -> NewTopicSpec:
        """The changelog topic of the table in app ``app_id``: 1 partition, compacted."""
        return NewTopicSpec(self.changelog_topic(app_id), 1, 1, {"cleanup.policy": "compact"})

    def changelog_topic(self, app_id: str | None = None) -> str:
        """``<app id>-<name>-changelog`` (Faust's naming of a table's changelog)."""
        app_id = app_id or self._app_id
        if app_id is None:
            raise RuntimeError(f"state table {self.name!r} not declared on an app")
        return f"{app_id}-{self.name}-changelog"

    def mark_restored(self) -> None:
        """Called once the app's recovery finished: :meth:`snapshot` may be read."""
        self._restored = True

    def snapshot(self) -> dict[str, Any]:
        """Every key's newest value, JSON-decoded. Raises ``RuntimeError`` before the
        table was restored, :class:`~streams.errors.LvlupError` for a value that is not JSON."""
        if self._table is None or not self._restored:
            raise RuntimeError(f"state table {self.name!r} read before it was restored")
        out: dict[str, Any] = {}
        for key, raw in self._table.items():
            name = key.decode() if isinstance(key, bytes) else str(key)
            try:
                out[name] = json.loads(raw)
            except (TypeError, ValueError) as exc:
                raise LvlupError(
                    f"state table {self.changelog_topic()}: key {name!r} holds no JSON value: {exc}"
                ) from exc
        return out

    async def write(self, changes: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Produce ``changes`` (``(key, JSON-able value)`` pairs, in order) to the changelog,
        each acknowledged by the broker before the next is sent. Raises
        ``RuntimeError`` when the table is not declared, :class:`LvlupError` when the broker
        refuses a write, ``TypeError``/``ValueError`` for a value JSON cannot encode."""
        if self._table is None:
            raise RuntimeError(f"state table {self.name!r} not declared on an app")
        pairs = list(changes.items()) if isinstance(changes, Mapping) else list(changes)
        topic = self._table.changelog_topic
        for key, value in pairs:
            payload = json.dumps(value, separators=(",", ":")).encode()
            fut = await topic.send(
                key=key.encode(),
                value=payload,
                partition=0,
                key_serializer="raw",
                value_serializer="raw",
            )
            try:
                await fut
            except (KafkaError, OSError, TimeoutError) as exc:
                raise LvlupError(
                    f"state table {topic.get_topic_name()}: write of {key!r} failed: {exc!r}"
                ) from exc
