"""A :class:`~streams.consumer.RecordConsumer` whose group member is a Faust agent.

The workers whose handling of one record is long (a custody run, a proposal's scan and
experiment, a build analysis) run the toolkit's serial loop (:class:`~streams.loop.SerialLoop`:
decode → DLQ policy → handler → commit). With this consumer under it, the group member is a
Faust app (:func:`streams.app.faust_app`) with one agent per worker, so every agent worker is a
Faust app as the design card asks, while the loop's guarantees stay those of the contract
suite (``tests/streams/contract``), which runs against this consumer too:

- **Manual acks.** The agent iterates ``stream.noack().events()`` (raw bytes, no Faust
  serializer) and hands each event to :meth:`FaustRecordConsumer.poll` through a one-slot
  queue. An event is acked only by :meth:`commit`, which then commits the consumer's acked
  offsets and returns once the broker stored them. A record whose handler failed is never
  acked, so neither Faust's periodic commit nor its commit on stop can pass it
  (faust-streaming acks an event when the loop body ends, *also* when it raised: with
  ``enable_acks`` on, a failed record would be committed on the next commit interval).
- **Concurrency 1.** One agent instance per worker: faust-streaming#606 (with ``concurrency``
  above 1 the consumer can commit past a message still in flight) cannot occur.
- **State.** With a :class:`~streams.faust_state.ChangelogState`, :meth:`FaustRecordConsumer.
  start` restores the worker's state from its changelog before the app joins the group (no
  record is handed out before), and the app's producer writes it. The agent still hands an
  event over only when no Faust recovery is running (:func:`streams.app.recovered`, the
  guard imperium uses).
- **Liveness.** ``broker_max_poll_interval`` is the longest handler call (Kafka's
  ``max.poll.interval.ms``), the session timeout 10 s as for every Faust app here.

Offsets are Kafka offsets; the committed offset is the next one the group reads.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import faust
from faust.types import TP

from streams.app import faust_app, recovered
from streams.dlq import SourceRecord
from streams.errors import LvlupError
from streams.faust_state import ChangelogState
from streams.kafka_admin import NewTopicSpec, create_topics

__all__ = ["FaustRecordConsumer"]


class FaustRecordConsumer:
    """:class:`~streams.consumer.RecordConsumer` on a Faust agent (module doc).

    ``group`` is the Faust app id and so the consumer group; ``topics`` must exist (the
    catalog's bootstrap creates them). ``max_poll_interval_s`` bounds one handler call, in
    seconds. ``datadir`` is the app's data directory (a temporary one when None: tables are
    ``memory://`` stores restored from their changelogs). ``state``: the worker's state
    (None: none); ``recovery_timeout_s``: the longest its restore may go without progress,
    in seconds. Raises
    :class:`~streams.errors.LvlupError` from :meth:`commit` when the
    broker refuses the commit (the partition was revoked meanwhile).
    """

    def __init__(self, bootstrap: str, topics: Sequence[str], group: str, *,
                 max_poll_interval_s: float = 1800.0, datadir: Path | None = None,
                 state: ChangelogState | None = None,
                 recovery_timeout_s: float = 60.0) -> None:
        self.bootstrap, self.topics, self.group = bootstrap, tuple(topics), group
        self.max_poll_interval_s = max_poll_interval_s
        self.datadir = datadir
        self.state, self.recovery_timeout_s = state, recovery_timeout_s
        self._app: faust.App | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._queue: asyncio.Queue[tuple[SourceRecord, Any]] = asyncio.Queue(maxsize=1)
        self._events: dict[tuple[str, int, int], Any] = {}

    def _build(self) -> faust.App:
        if self.datadir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lvlup-faust-")
            datadir = Path(self._tmp.name)
        else:
            datadir = self.datadir
        # stream_wait_empty off: a stop or rebalance must not wait for unacked events (a
        # failed record is never acked; the one in the hand-over slot is not either)
        app = faust_app(self.bootstrap, self.group, datadir, stream_wait_empty=False,
                        broker_max_poll_interval=self.max_poll_interval_s)
        topic = app.topic(*self.topics, key_type=bytes, value_type=bytes,
                          key_serializer="raw", value_serializer="raw")
        queue = self._queue
        if self.state is not None:
            self.state.declare(app)

        async def records(stream: Any) -> None:
            async for event in stream.noack().events():
                await recovered(app)
                msg = event.message
                source = SourceRecord(msg.topic, msg.partition, msg.offset, msg.key, msg.value,
                                      list(msg.headers or ()))
                await queue.put((source, event))

        app.agent(topic, name=f"{self.group}.records", concurrency=1)(records)
        return app

    @property
    def leader_topic(self) -> str:
        """The app's internal leader topic (Faust's assignor), made by :meth:`start`."""
        return f"{self.group}-__assignor-__leader"

    async def start(self) -> None:
        """Start the Faust app: it joins the group and resumes at the committed offsets
        (the earliest offset where none is committed). The leader topic and the state
        table's changelog are created first, as for imperium (:func:`agents.imperium`):
        declared by Faust while it starts, a new topic was sometimes missing from the
        consumer's metadata. With a state, it is restored first; raises
        :class:`~streams.log_reader.LogReadStalled` when that read stalls for
        ``recovery_timeout_s`` (the worker ends; its supervisor restarts it)."""
        specs = [NewTopicSpec(self.leader_topic, 1, 1, {})]
        if self.state is not None:
            specs.append(self.state.changelog_spec(self.group))
        await asyncio.to_thread(create_topics, self.bootstrap, specs)
        self._queue = asyncio.Queue(maxsize=1)  # a restarted consumer starts empty
        self._events.clear()
        if self.state is not None:
            await self.state.restore(self.bootstrap, self.group,
                                     stall_s=self.recovery_timeout_s)
        self._app = self._build()
        await self._app.start()

    async def stop(self) -> None:
        """Stop the app. Only acked records are committed, so nothing past the last
        :meth:`commit` is."""
        app, self._app = self._app, None
        if app is not None:
            await app.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def poll(self, timeout_s: float) -> SourceRecord | None:
        """The next record, or None when none arrived within ``timeout_s`` seconds."""
        try:
            source, event = await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None
        self._events[(source.topic, source.partition, source.offset)] = event
        return source

    async def commit(self, record: SourceRecord) -> None:
        """Ack ``record``'s event and commit ``offset + 1``; returns once the broker stored it.

        Commits through the consumer's own client (its thread), not Faust's commit, whose
        bookkeeping counts a failed commit as done (faust-streaming#316) and which skips a
        commit while its periodic one runs. Raises :class:`LvlupError` when the partition is
        no longer assigned or the broker refuses the commit.
        """
        if self._app is None:
            raise RuntimeError("consumer not started")
        event = self._events.pop((record.topic, record.partition, record.offset))
        event.ack()
        tp = TP(record.topic, record.partition)
        consumer: Any = self._app.consumer  # faust's ThreadDelegateConsumer: ``_commit``
        # the driver drops unassigned partitions from a commit and reports success
        if tp not in consumer.assignment() or not await consumer._commit(
                {tp: record.offset + 1}):
            raise LvlupError(f"{self.group}: commit of {record.topic}[{record.partition}] "
                             f"offset {record.offset + 1} refused (partition revoked?)")
