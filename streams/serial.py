"""Long-running asyncio workers: a stop event tied to SIGTERM/SIGINT, and a one-at-a-time
consumer loop.

Workers whose handling of one record is long (a custody run, a proposal's scan: seconds to
minutes of model or sandbox time) consume one record per poll and commit its offset only
after the handler returned — at-least-once, at most one record to redo after a crash. The
handlers are idempotent per record (they key what they write by the record's ids).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

__all__ = ["consume_serially", "stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An event the running loop sets on SIGTERM or SIGINT (a worker's clean shutdown).

    Must be called from inside the running loop (``asyncio.get_running_loop``); raises
    ``RuntimeError`` otherwise.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def consume_serially(
    topics: Sequence[str],
    handle: Callable[[ConsumerRecord[bytes, bytes]], Awaitable[Any]],
    stop: asyncio.Event,
    *,
    bootstrap: str,
    group: str,
    ready: asyncio.Event | None = None,
    max_poll_interval_ms: int = 3_600_000,
) -> None:
    """Consume ``topics`` in consumer group ``group`` one record at a time until ``stop``.

    Each record is passed to ``handle``; its offset + 1 is committed once ``handle`` returns.
    ``handle`` must not raise for a bad record (dead-letter it instead): an exception ends
    the loop uncommitted, so the record is redelivered when the worker restarts.
    ``max_poll_interval_ms`` bounds one handler's time before the group evicts the member
    (Kafka consumer config ``max.poll.interval.ms``). ``ready`` is set once the consumer
    started. The session timeout is 10 s (heartbeats every second), so a dead worker's
    partitions move within seconds.
    """
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=10_000, heartbeat_interval_ms=1_000,
        max_poll_interval_ms=max_poll_interval_ms, max_poll_records=1)
    await consumer.start()
    if ready is not None:
        ready.set()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=200, max_records=1)
            for tp, messages in batch.items():
                for msg in messages:
                    await handle(msg)
                    await consumer.commit({TopicPartition(tp.topic, tp.partition):
                                           msg.offset + 1})
    finally:
        await consumer.stop()
