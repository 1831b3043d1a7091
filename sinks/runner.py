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
3. ``writer.write(group, batch)`` runs on one writer thread while this thread consumes and
   decodes the next batch (a two-stage pipeline: the store's own time — Postgres executing
   the upserts, chdb an insert — overlaps the next batch's Python work; both sinks' writes
   wait on sockets or C code with the GIL released). At most one write is in flight: when
   the next batch closes first, it waits for the write — after a second (a store outage)
   with every assigned partition paused and the consumer polling — so memory stays bounded
   by two batches and writes of a partition happen in log order. On
   :class:`~sinks.errors.StoreUnavailable` the write is retried with exponential backoff
   (tenacity; :class:`~sinks.errors.BackPressure`'s ``retry_after`` is honoured); the group
   membership survives as above.
4. Only after the write returns are the offsets committed (``after_write`` runs just
   before). The commit is asynchronous, answered by ``on_commit`` inside this thread's own
   polls, so no broker outage can block the loop (librdkafka does not bound a synchronous
   commit: one waited on a restarting coordinator past ``max.poll.interval.ms`` and the
   sink left its group for good, see docs/ARCHITECTURE.md). At most one commit is in flight;
   offsets written meanwhile wait for its answer and go with the next. An offset stays
   pending until a commit of it is confirmed, so a failed one is asked again at the next
   flush, even with no new record; a failure is not re-asked once a later offset of the
   partition has been asked (the group's position never moves back). At revocation and at
   stop the pending offsets are asked at once; stop then polls up to ``commit_wait_s`` for
   the answers.
5. On assignment the consumer seeks to the offsets the writer stored with its data (Postgres
   stores them in the same transaction), so a write whose commit was lost is not re-applied,
   and the next flush commits those offsets (the seek skips the stored records, so no batch
   of them would bring the group's commit up to the data).
   On revocation the write in flight is waited for and its commit asked first (the
   partitions are still ours inside the callback, and the request goes to the coordinator
   before the rejoin); the uncommitted records of the revoked partitions are dropped: the
   new owner reads them again (at-least-once; the writers are idempotent).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog
import tenacity
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

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
_PAUSE_AFTER_S = 1.0
"""How long the closed next batch waits for the write in flight before pausing and polling
(module doc, 3): batch writes take tens to hundreds of milliseconds here."""


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
    ``max_batch`` (module doc, 1); ``None`` waits for ``max_wait_s``. ``commit_wait_s``: how
    long :meth:`SinkRunner.run` polls at stop for its last commits' answers (module doc, 4).
    """

    group: str
    topics: tuple[str, ...]
    max_batch: int = 5000
    max_wait_s: float = 0.2
    drain_s: float | None = None
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    session_timeout_ms: int = 10_000
    commit_wait_s: float = 10.0
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
        self._closing: Batch | None = None  # closed, waiting for the write in flight
        self._inflight: tuple[Batch, Future[None]] | None = None
        self._writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sink-write")
        self._uncommitted: dict[TopicPartitionKey, int] = {}  # written, commit not yet asked
        self._asked: dict[TopicPartitionKey, int] = {}  # the latest offset asked per partition
        self._commits_in_flight = 0  # asked, not yet answered by on_commit
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap,
            "group.id": config.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": config.session_timeout_ms,
            "heartbeat.interval.ms": max(500, config.session_timeout_ms // 10),
            "max.poll.interval.ms": 300_000,
            "enable.partition.eof": False,
            "on_commit": self._on_commit,
            **dict(config.consumer_config),
        })

    # -- rebalance callbacks -------------------------------------------------------------
    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._settle(poll=False)  # the stored offsets must include the write in flight
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
        self._settle(poll=False)  # its offsets are asked while the partitions are ours
        self._commit({}, now=True)
        self._batch.drop_partitions(revoked)
        if self._closing is not None:
            self._closing.drop_partitions(revoked)
        self._uncommitted = {k: o for k, o in self._uncommitted.items() if k not in revoked}
        self._asked = {k: o for k, o in self._asked.items() if k not in revoked}
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
            self._flush(wait=True)
            self._await_commits()
        finally:
            self._writes.shutdown(wait=False)
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

    def _flush(self, *, wait: bool = False) -> None:
        """Close the batch: settle the write in flight, then start this batch's write (module
        doc, 3–4); ``wait`` also settles this one (at stop)."""
        # A fresh buffer first: records polled while a write is waited for belong to the next.
        batch, self._batch = self._batch, Batch()
        self._closing = batch
        try:
            self._settle(poll=not wait)
        finally:
            self._closing = None
        if batch.empty:
            self._commit({})  # a commit that failed earlier, if any
            return
        self.dlq.flush()
        if batch.records:
            self._inflight = (batch, self._writes.submit(self._write, batch))
        else:  # dead-lettered records only: nothing to write, the offsets to commit
            self._inflight = (batch, _done())
        if wait:
            self._settle(poll=False)

    def _write(self, batch: Batch) -> None:
        """The writer thread: ``writer.write`` retried while the store is unavailable."""
        self._retrying(lambda: self.writer.write(self.config.group, batch),
                       sleep=self._sleep_until_stopped)

    def _settle(self, *, poll: bool) -> None:
        """Wait for the write in flight (polling with partitions paused when ``poll``),
        then call ``after_write`` and commit its offsets. Raises what the write raised."""
        while self._inflight is not None:
            batch, future = self._inflight
            if poll and not future.done() and not self._stop.is_set():
                # A plain wait first: pausing makes librdkafka drop the partitions' prefetched
                # records (fetched again after the resume), so a normal write is waited for
                # without it; a write still running after _PAUSE_AFTER_S is retrying a store
                # outage, and polling then keeps the group membership (max.poll.interval.ms).
                # A rebalance inside that poll settles the write itself (_on_revoke).
                if not wait_futures([future], timeout=_PAUSE_AFTER_S).done:
                    self._poll_paused(future.done)
                continue
            self._inflight = None
            future.result()
            self.stats.written += len(batch)
            self.stats.batches += 1
            if self._after_write is not None:
                self._after_write(batch)
            self._commit(batch.next_offsets)

    def _commit(self, next_offsets: dict[TopicPartitionKey, int], *, now: bool = False
                ) -> None:
        """Ask the group to commit ``next_offsets`` with every offset still pending (module
        doc, 4): asynchronously, unless a commit is in flight (then they wait for its answer
        and the next flush), or ``now`` (revocation, stop) sends them regardless. Requests go
        to the coordinator in order, so a later one never moves a position back.
        """
        self._uncommitted.update(next_offsets)
        if not self._uncommitted or (self._commits_in_flight and not now):
            return
        pending = self._uncommitted
        offsets = [TopicPartition(t, p, o) for (t, p), o in pending.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # refused before any request (no group state yet)
            self.stats.commit_failures += 1
            log.warning("sink.commit_failed", group=self.config.group, error=str(exc),
                        note="asked again at the next flush; the writer is idempotent")
            return
        self._uncommitted = {}
        self._asked.update(pending)
        self._commits_in_flight += 1

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """librdkafka's answer to one commit (served inside this thread's polls): record
        what the group now holds; put back what failed unless a later offset of that
        partition has been asked since (or it was revoked)."""
        self._commits_in_flight = max(0, self._commits_in_flight - 1)
        failed: list[str] = []
        for tp in partitions:
            key = (tp.topic, tp.partition)
            error = err or tp.error
            if error is None:
                if tp.offset > self.stats.last_commit.get(key, -1):
                    self.stats.last_commit[key] = tp.offset
            elif self._asked.get(key) == tp.offset and key not in self._uncommitted:
                self._uncommitted[key] = tp.offset
                failed.append(str(error))
        if failed:
            self.stats.commit_failures += 1
            log.warning("sink.commit_failed", group=self.config.group, error=failed[0],
                        partitions=len(failed),
                        note="asked again at the next flush; the writer is idempotent")

    def _await_commits(self) -> None:
        """At stop: ask what is pending and poll (partitions paused, records fetched are
        left to the next owner) until every commit is answered and confirmed, or
        ``commit_wait_s`` runs out — then the group is behind the store, which the next
        assignment's seek to the stored offsets repairs (module doc, 5)."""
        deadline = time.monotonic() + self.config.commit_wait_s
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        while self._uncommitted or self._commits_in_flight:
            if time.monotonic() >= deadline:
                log.warning("sink.commit_unconfirmed", group=self.config.group,
                            pending=len(self._uncommitted),
                            in_flight=self._commits_in_flight,
                            waited_s=self.config.commit_wait_s)
                return
            self._commit({})
            self._consumer.poll(0.1)

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
        deadline = time.monotonic() + seconds
        self._poll_paused(lambda: time.monotonic() >= deadline, poll_s=seconds)

    def _sleep_until_stopped(self, seconds: float) -> None:
        """The writer thread's retry sleep: this thread polls meanwhile."""
        self._stop.wait(seconds)

    def _poll_paused(self, done: Callable[[], bool], poll_s: float = 0.1) -> None:
        """Poll with every assigned partition paused until ``done()`` or :meth:`stop`;
        records fetched before the pause are taken into the open batch afterwards."""
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
        fetched: list[Message] = []
        try:
            while not done() and not self._stop.is_set():
                msg = self._consumer.poll(min(0.1, poll_s))
                if msg is not None:  # fetched before the pause: keep it for the next batch
                    fetched.append(msg)
        finally:
            if assignment:
                self._consumer.resume(assignment)
        for msg in fetched:
            self._take(msg)

    def _retrying(self, fn: Callable[[], Any],
                  sleep: Callable[[float], None] | None = None) -> Any:

        def _before_sleep(state: tenacity.RetryCallState) -> None:
            self.stats.write_retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.warning("sink.store_unavailable", group=self.config.group,
                        writer=self.writer.name, attempt=state.attempt_number, error=str(exc))

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(StoreUnavailable),
            wait=self._wait,
            stop=lambda _state: self._stop.is_set(),
            sleep=sleep or self._sleep_polling,
            before_sleep=_before_sleep,
            reraise=True,
        )
        return retrying(fn)


def _done() -> Future[None]:
    """A future already resolved (a batch with nothing to write)."""
    future: Future[None] = Future()
    future.set_result(None)
    return future
