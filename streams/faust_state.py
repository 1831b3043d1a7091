"""A serial worker's state as a compacted changelog topic, written through its Faust app.

The serial workers (custody, proposals, conquest: :class:`~streams.loop.SerialLoop` over
:class:`~streams.faust_consumer.FaustRecordConsumer`) keep their state — levels, XP, Elo,
applied runs, build durations — as key → JSON value changes on one compacted changelog topic
per worker, ``<group>-state-changelog``, restored when the worker starts, instead of folding
every record the worker ever wrote.

**Restored by the toolkit's reader, not by a Faust table.** This began as a Faust
``GlobalTable`` restored by Faust's recovery. On a compacted changelog that recovery crawled:
after a custody worker applied 3,000 runs (15,001 changes, compacted by the broker to 3,196
records), faust-streaming took 52-66 s to recover the table, advancing ~200 offsets/s in
5-second steps, while :func:`streams.log_reader.read_raw_to_end` read the same partition in
0.02-0.03 s (5 fetches); before compaction Faust read the 15,001 records in ~3 s (the class of
faust-streaming#176, recovery stalls on compacted changelogs; ``lvlup bench restart`` and
docs/ARCHITECTURE.md have the figures). So :meth:`ChangelogState.restore` reads the changelog
to its end offsets before the worker's app joins its group (no record is handed out before
the state is loaded), and the changes are produced through the app's own producer.

Why :meth:`ChangelogState.write` awaits each change: a Faust table write (``send_soon``) is
buffered with no delivery confirmation, and ``Producer.flush()`` returns after 0.1 s without
a sent message even when the buffer is not empty (faust/transport/producer.py,
``ProducerBuffer.flush_atmost``), while the loop commits the input offset right after the
handler returns — a crash then would lose a change whose input is committed. Each change here
is acknowledged by the broker (``acks=all``, idempotent producer:
:mod:`streams.faust_transport`) before the next is sent.

Ordering: the changelog has **one partition** and changes are sent one after the other, so a
crash leaves a prefix of a worker's writes: a worker that writes its "this input is applied"
marker last never restores a marker without the state it vouches for.

Values are JSON (:func:`json.dumps`); keys are strings. A value of ``None`` is written as JSON
``null`` (not a tombstone), so a key's newest value always wins after compaction (Kafka's log
compaction keeps the newest record of each key).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import faust
from aiokafka.errors import KafkaError

from streams.consumer import KafkaPartitionReader
from streams.errors import LvlupError
from streams.kafka_admin import NewTopicSpec
from streams.log_reader import read_raw_to_end

__all__ = ["CHANGELOG_CONFIG", "SEEDED", "ChangelogState", "StateTable"]

#: Topic configs of a state changelog. Kafka compacts only closed segments, and its defaults
#: (1 GiB segments, rolled after 7 days) leave a worker's whole changelog in the active segment,
#: so a restart read every write ever made. 1 MiB segments rolled at least every 10 min,
#: cleaned once 10 % of the log is dirty (https://kafka.apache.org/documentation/#topicconfigs).
CHANGELOG_CONFIG = {"cleanup.policy": "compact", "segment.bytes": str(1 << 20),
                    "segment.ms": str(600_000), "min.cleanable.dirty.ratio": "0.1"}

#: the key a worker writes last when it seeded its table from the log (a table without it is
#: seeded again: a crash mid-seed leaves no half state that looks complete)
SEEDED = "meta:seeded"


class StateTable(Protocol):
    """What a serial worker needs of its state: :class:`ChangelogState` on Kafka,
    ``streams.testing.MemoryStateTable`` in unit tests."""

    def snapshot(self) -> dict[str, Any]:
        """Every key's newest value (once restored)."""

    async def write(self, changes: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Store ``changes`` in order; returns once they are durable."""


class ChangelogState:
    """One worker's state changelog (module doc). ``name`` is the state's name in its app
    (the topic is ``<app id>-<name>-changelog``).

    Used by :class:`~streams.faust_consumer.FaustRecordConsumer`: :meth:`restore` before the
    app starts, :meth:`declare` on the app; then read with :meth:`snapshot` and written with
    :meth:`write`.
    """

    def __init__(self, name: str = "state") -> None:
        self.name = name
        self._topic: Any = None
        self._app_id: str | None = None
        self._values: dict[str, bytes] | None = None

    def declare(self, app: faust.App) -> None:
        """Make the changelog writable through ``app``'s producer (before the app starts)."""
        self._app_id = str(app.conf.id)
        self._topic = app.topic(self.changelog_topic(), key_type=bytes, value_type=bytes,
                                key_serializer="raw", value_serializer="raw", partitions=1)

    def changelog_spec(self, app_id: str) -> NewTopicSpec:
        """The changelog topic of app ``app_id``: 1 partition, compacted
        (:data:`CHANGELOG_CONFIG`)."""
        return NewTopicSpec(self.changelog_topic(app_id), 1, 1, dict(CHANGELOG_CONFIG))

    def changelog_topic(self, app_id: str | None = None) -> str:
        """``<app id>-<name>-changelog`` (Faust's naming of a table's changelog)."""
        app_id = app_id or self._app_id
        if app_id is None:
            raise RuntimeError(f"state {self.name!r} not declared on an app")
        return f"{app_id}-{self.name}-changelog"

    async def restore(self, bootstrap: str, app_id: str, *, stall_s: float = 30.0) -> int:
        """Read the changelog of app ``app_id`` to its end offsets (now) and keep each key's
        newest value; returns the records read. Raises
        :class:`~streams.log_reader.LogReadStalled` when the read makes no progress for
        ``stall_s`` seconds."""
        reader = KafkaPartitionReader(bootstrap)
        await reader.start()
        try:
            records, _ends = await read_raw_to_end(reader, [self.changelog_topic(app_id)],
                                                   stall_s=stall_s)
        finally:
            await reader.stop()
        values: dict[str, bytes] = {}
        for rec in records:  # offset order: the newest value of a key comes last
            if rec.key is None:
                continue
            name = rec.key.decode()
            if rec.value is None:
                values.pop(name, None)
            else:
                values[name] = rec.value
        self._values = values
        return len(records)

    def snapshot(self) -> dict[str, Any]:
        """Every key's newest value at :meth:`restore`, JSON-decoded. Raises ``RuntimeError``
        before the restore, :class:`~streams.errors.LvlupError` for a value that is not
        JSON."""
        if self._values is None:
            raise RuntimeError(f"state {self.name!r} read before it was restored")
        out: dict[str, Any] = {}
        for name, raw in self._values.items():
            try:
                out[name] = json.loads(raw)
            except ValueError as exc:
                raise LvlupError(f"state {self.changelog_topic()}: key {name!r} holds no "
                                 f"JSON value: {exc}") from exc
        return out

    async def write(self, changes: Sequence[tuple[str, Any]] | Mapping[str, Any]) -> None:
        """Produce ``changes`` (``(key, JSON-able value)`` pairs, in order) to the changelog,
        each acknowledged by the broker before the next is sent. Raises ``RuntimeError``
        when not declared on an app, :class:`LvlupError` when the broker refuses a write,
        ``TypeError``/``ValueError`` for a value JSON cannot encode."""
        if self._topic is None:
            raise RuntimeError(f"state {self.name!r} not declared on an app")
        pairs = list(changes.items()) if isinstance(changes, Mapping) else list(changes)
        for key, value in pairs:
            payload = json.dumps(value, separators=(",", ":")).encode()
            fut = await self._topic.send(key=key.encode(), value=payload, partition=0,
                                         key_serializer="raw", value_serializer="raw")
            try:
                await fut
            except (KafkaError, OSError, TimeoutError) as exc:
                raise LvlupError(f"state {self.changelog_topic()}: write of {key!r} failed: "
                                 f"{exc!r}") from exc
