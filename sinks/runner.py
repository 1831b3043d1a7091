"""The sink consumer loop: consume → decode → batch → write → commit, at least once.

Not a Faust agent: the commit point must be ours. confluent-kafka consumer, auto-commit off.

1. Batches close at ``max_batch`` records or ``max_wait_s`` seconds, whichever first — or,
   with ``drain_s`` set, as soon as a fetch of ``drain_s`` seconds leaves a non-empty batch
   short of ``max_batch``: the consumer has caught up with the log, and waiting out
   ``max_wait_s`` would only add latency. Under a backlog fetches fill the batch, so batches
   stay full at full rate; below it a batch holds what arrived while the previous one was
   written (adaptive batching, as the Nagle algorithm, RFC 896, or a Kafka producer that
   sends when its ``linger.ms`` runs out).
2. A record that cannot be decoded goes to ``<group>.dlq`` (:mod:`streams.dlq`); the DLQ is
   flushed (acked) before the batch is written, so committing past it loses nothing.
3. ``writer.write(group, batch)`` — on :class:`~sinks.errors.StoreUnavailable` the write is
   retried with exponential backoff (tenacity; :class:`~sinks.errors.BackPressure`'s
   ``retry_after`` is honoured) while every assigned partition is paused and the consumer
   keeps polling, so the group membership survives and memory stays bounded by one batch.
4. Only after the write returns are the offsets committed (synchronously).
5. On assignment the consumer seeks to the offsets the writer stored with its data (Postgres
   stores them in the same transaction), so a write whose commit was lost is not re-applied,
   and the next flush commits those offsets (the seek skips the stored records, so no batch
   of them would bring the group's commit up to the data).
   On revocation the uncommitted records of the revoked partitions are dropped: the new
   owner reads them again (at-least-once; the writers are idempotent).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
import tenacity
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from schemas.codec import Codec
from schemas.errors import SchemaError
from sinks.errors import BackPressure, StoreUnavailable
from sinks.records import Batch, ConsumedRecord, TopicPartitionKey
from streams.dlq import DeadLetterQueue, DlqPolicy, SourceRecord
from streams.messages import message_headers, message_position

__all__ = ["SinkConfig", "SinkRunner", "SinkStats", "SinkWriter"]

log = structlog.get_logger(__name__)
_TRANSIENT = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
              KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE}


class SinkWriter(Protocol):
    """A store the runner writes batches to."""

    name: str

    def stored_offsets(
        self, group: str, partitions: Sequence[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        """Next offsets stored with the data, per partition ({} if the store keeps none)."""

    def write(self, group: str, batch: Batch) -> None:
        """Write the batch idempotently. Raise ``StoreUnavailable`` to have it retried."""


@dataclass(frozen=True)
class SinkConfig:
    """One sink consumer: its group, source topics, batching and retry limits (seconds).

    ``drain_s``: close a non-empty batch when a fetch of this long leaves it short of
    ``max_batch`` (module doc, 1); ``None`` waits for ``max_wait_s``.
    """

    group: str
    topics: tuple[str, ...]
    max_batch: int = 5000
    max_wait_s: float = 0.2
    drain_s: float | None = None
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    session_timeout_ms: int = 10_000
    dlq: DlqPolicy = field(default_factory=DlqPolicy)
    consumer_config: tuple[tuple[str, Any], ...] = ()


@dataclass
class SinkStats:
    """Counters of one runner (read by metrics and tests)."""

    batches: int = 0
    written: int = 0
    dead_lettered: int = 0
    write_retries: int = 0
    commit_failures: int = 0
    last_commit: dict[TopicPartitionKey, int] = field(default_factory=dict)


class SinkRunner:
    """Runs one :class:`SinkWriter` over the topics of ``config``.

    ``dlq`` routes undecodable records; ``after_write`` (tests, fault injection) is called
    between a confirmed write and the commit.
    """

    def __init__(
        self,
        bootstrap: str,
        config: SinkConfig,
        writer: SinkWriter,
        codec: Codec,
        dlq: DeadLetterQueue,
        *,
        after_write: Callable[[Batch], None] | None = None,
    ) -> None:
        self.config = config
        self.writer = writer
        self.codec = codec
        self.dlq = dlq
        self.stats = SinkStats()
        self._after_write = after_write
        self._stop = threading.Event()
        self._batch = Batch()
        self._uncommitted: dict[TopicPartitionKey, int] = {}  # written, commit failed
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": config.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": config.session_timeout_ms,
            "heartbeat.interval.ms": max(500, config.session_timeout_ms // 10),
            "max.poll.interval.ms": 300_000,
            "enable.partition.eof": False,
            **dict(config.consumer_config),
        })

    # -- rebalance callbacks -------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        stored = self._retrying(lambda: self.writer.stored_offsets(self.config.group, keys))
        for tp in partitions:
            if (tp.topic, tp.partition) in stored:
                tp.offset = stored[(tp.topic, tp.partition)]
        consumer.assign(partitions)
        # The store is ahead of the group when a commit was lost after its write (a broker
        # restart, or a revoke before the retry): the seek skips those records, so no batch
        # would ever commit them — the next flush commits the stored positions.
        self._uncommitted.update(stored)
        log.info("sink.assigned", group=self.config.group, writer=self.writer.name,
                 partitions=len(partitions), seeks=len(stored))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        revoked = {(tp.topic, tp.partition) for tp in partitions}
        self._batch.drop_partitions(revoked)
        self._uncommitted = {k: o for k, o in self._uncommitted.items() if k not in revoked}
        consumer.unassign()

    # -- the loop ------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask :meth:`run` to write what it holds, commit, and return."""
        self._stop.set()

    def run(self) -> None:
        """Consume until :meth:`stop`; raises ``DlqLimitExceeded`` when the DLQ limits trip."""
        cfg = self.config
        self._consumer.subscribe(list(cfg.topics), on_assign=self._on_assign,
                                 on_revoke=self._on_revoke)
        try:
            opened = time.monotonic()
            while not self._stop.is_set():
                room = max(1, cfg.max_batch - len(self._batch))
                wait = max(0.0, cfg.max_wait_s - (time.monotonic() - opened))
                if cfg.drain_s is not None:
                    wait = min(wait, cfg.drain_s)
                msgs = self._consumer.consume(num_messages=room, timeout=wait)
                for msg in msgs:
                    self._take(msg)
                full = len(self._batch) >= cfg.max_batch
                drained = (cfg.drain_s is not None and len(msgs) < room
                           and not self._batch.empty)
                if full or drained or time.monotonic() - opened >= cfg.max_wait_s:
                    self._flush()
                    opened = time.monotonic()
            self._flush()
        finally:
            self._consumer.close()

    def _take(self, msg: Message) -> None:
        err = msg.error()
        if err is not None:
            if err.code() == KafkaError._PARTITION_EOF:
                return
            if err.retriable() or err.code() in _TRANSIENT:
                # the client reconnects by itself (a broker restart, a leader moving)
                log.warning("sink.consumer_transient", group=self.config.group, error=str(err))
                return
            raise StoreUnavailable(f"consumer error: {err}")
        topic, partition, offset = message_position(msg)
        value = msg.value()
        try:
            if value is None:
                raise SchemaError("tombstone (null value) on an event topic", topic=topic,
                                  partition=partition, offset=offset)
            record_type, record = self.codec.decode(
                value, "latest", topic=topic, partition=partition, offset=offset
            )
        except SchemaError as exc:
            self.stats.dead_lettered += 1
            self._batch.advance(topic, partition, offset)
            self.dlq.send(SourceRecord(topic, partition, offset, msg.key(), value,
                                       message_headers(msg)), exc)
            return
        self.dlq.ok()
        self._batch.add(ConsumedRecord(topic, partition, offset, msg.timestamp()[1],
                                       record_type, record, msg.key()))

    def _flush(self) -> None:
        batch = self._batch
        if batch.empty:
            self._commit({})  # a commit that failed earlier, if any
            return
        # A fresh buffer first: records polled while a retry waits belong to the next batch.
        self._batch = Batch()
        self.dlq.flush()
        if batch.records:
            self._retrying(lambda: self.writer.write(self.config.group, batch))
            self.stats.written += len(batch)
        self.stats.batches += 1
        if self._after_write is not None:
            self._after_write(batch)
        self._commit(batch.next_offsets)

    def _commit(self, next_offsets: dict[TopicPartitionKey, int]) -> None:
        """Commit ``next_offsets`` with any earlier offsets whose commit failed, synchronously.

        A failed commit is kept and tried again with the next batch, or alone at the next
        flush that finds no records: otherwise a commit lost to a broker restart after the
        last batch would leave the group's committed offsets behind the data it stored until
        new records came (the chaos run's wait for both groups to reach the log end met that).
        """
        pending = {**self._uncommitted, **next_offsets}
        if not pending:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in pending.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # noqa: BLE001 - KafkaException; the data is written, idempotent
            self._uncommitted = pending
            self.stats.commit_failures += 1
            log.warning("sink.commit_failed", group=self.config.group, error=str(exc),
                        note="tried again at the next flush; the writer is idempotent")
            return
        self._uncommitted = {}
        self.stats.last_commit.update(pending)

    # -- retries while paused --------------------------------------------------------------
    def _wait(self, state: tenacity.RetryCallState) -> float:
        base = tenacity.wait_exponential(multiplier=self.config.retry_initial_s,
                                         max=self.config.retry_max_s)(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, BackPressure):
            return max(base, exc.retry_after)
        return float(base)

    def _sleep_polling(self, seconds: float) -> None:
        """Sleep with every partition paused, polling so the group keeps us."""
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline and not self._stop.is_set():
                msg = self._consumer.poll(min(0.1, max(0.0, deadline - time.monotonic())))
                if msg is not None:  # fetched before the pause: keep it for the next batch
                    self._pending.append(msg)
        finally:
            if assignment:
                self._consumer.resume(assignment)

    _pending: list[Message]

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        self._pending = []

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats.write_retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning("sink.store_unavailable", group=self.config.group,
                        writer=self.writer.name, attempt=state.attempt_number, error=str(exc))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailable),
            wait=self._wait,
            stop=lambda _state: self._stop.is_set(),
            sleep=self._sleep_polling,
            before_sleep=_before_sleep,
            reraise=True,
        )
        result = retrying(fn)
        pending, self._pending = self._pending, []
        for msg in pending:
            self._take(msg)
        return result
