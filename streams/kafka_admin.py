"""Topic administration on a Kafka cluster (confluent-kafka ``AdminClient``).

Topics are created explicitly with their partition count and configs, idempotently: an
existing topic with the same partition count is left alone; one with a different count is an
error (Faust would fail later with ``PartitionsMismatch``, and repartitioning breaks keyed
order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import tenacity
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.errors import LvlupError

__all__ = [
    "TopicSpec", "create_topics", "delete_topics", "end_offsets", "is_transient",
    "topic_partitions", "transient_retry",
]


@dataclass(frozen=True)
class TopicSpec:
    """A topic to create: ``name``, ``partitions``, ``replication``, and broker ``config``."""

    name: str
    partitions: int
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def topic_partitions(bootstrap: str, timeout_s: float = 10.0) -> dict[str, int]:
    """Existing topics and their partition counts."""
    meta = _admin(bootstrap).list_topics(timeout=timeout_s)
    return {name: len(t.partitions) for name, t in meta.topics.items() if t.error is None}


def create_topics(
    bootstrap: str, specs: Iterable[TopicSpec], timeout_s: float = 30.0
) -> dict[str, str]:
    """Create each topic unless it exists; returns ``{name: "created" | "exists"}``.

    Raises :class:`LvlupError` when a topic exists with another partition count, or the
    broker refuses a creation (bad config, unreachable broker).
    """
    specs = list(specs)
    existing = topic_partitions(bootstrap, timeout_s)
    result: dict[str, str] = {}
    todo: list[NewTopic] = []
    for spec in specs:
        if spec.name in existing:
            if existing[spec.name] != spec.partitions:
                raise LvlupError(
                    f"topic {spec.name} has {existing[spec.name]} partitions, the catalog says "
                    f"{spec.partitions}: fix the catalog or recreate the topic"
                )
            result[spec.name] = "exists"
        else:
            todo.append(
                NewTopic(spec.name, spec.partitions, spec.replication, config=dict(spec.config))
            )
    if not todo:
        return result
    admin = _admin(bootstrap)  # keep a reference: the futures die with the client
    futures = admin.create_topics(todo, operation_timeout=timeout_s)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
            result[name] = "created"
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                result[name] = "exists"
                continue
            raise LvlupError(f"creating topic {name} failed: {err}") from exc
    _wait_for_leaders(admin, [t.topic for t in todo], timeout_s)
    return result


def _wait_for_leaders(admin: AdminClient, names: list[str], timeout_s: float) -> None:
    """Return once every partition of ``names`` has a leader (creation is asynchronous:
    clients asking right after it get UNKNOWN_TOPIC or NOT_LEADER errors)."""

    def ready() -> bool:
        meta = admin.list_topics(timeout=timeout_s)
        for name in names:
            topic = meta.topics.get(name)
            if topic is None or topic.error is not None or not topic.partitions:
                return False
            if any(p.leader < 0 for p in topic.partitions.values()):
                return False
        return True

    poll = tenacity.Retrying(stop=tenacity.stop_after_delay(timeout_s),
                             wait=tenacity.wait_fixed(0.1),
                             retry=tenacity.retry_if_result(lambda ok: not ok),
                             retry_error_callback=lambda _state: False)
    if not poll(ready):
        raise LvlupError(f"topics {names} have no leader after {timeout_s} s")


def delete_topics(bootstrap: str, names: Iterable[str], timeout_s: float = 30.0) -> None:
    """Delete topics; a topic that does not exist is ignored."""
    names = list(names)
    if not names:
        return
    admin = _admin(bootstrap)
    futures = admin.delete_topics(names, operation_timeout=timeout_s)
    for name, fut in futures.items():
        try:
            fut.result(timeout=timeout_s)
        except KafkaException as exc:
            err = exc.args[0]
            if isinstance(err, KafkaError) and err.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise LvlupError(f"deleting topic {name} failed: {err}") from exc


_TRANSIENT = {KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.LEADER_NOT_AVAILABLE,
              KafkaError._TIMED_OUT, KafkaError._TRANSPORT, KafkaError.REQUEST_TIMED_OUT,
              # a group coordinator moving or loading its offsets (after a broker restart)
              KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
              KafkaError.COORDINATOR_LOAD_IN_PROGRESS}


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is a ``KafkaException`` whose error a retry can clear (:data:`_TRANSIENT`:
    no leader yet, timeouts, transport, a group coordinator moving or loading)."""
    return (isinstance(exc, KafkaException) and isinstance(exc.args[0], KafkaError)
            and exc.args[0].code() in _TRANSIENT)


def transient_retry(timeout_s: float) -> tenacity.Retrying:
    """The one retry policy for admin and offset reads: retries transient Kafka errors
    (:func:`is_transient`) with exponential backoff (0.1 s doubling, at most 2 s between tries)
    for up to ``3 × timeout_s`` seconds, then re-raises the last error. Call it with the
    function: ``transient_retry(10.0)(lambda: consumer.committed(tps, timeout=10.0))``."""
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_transient),
        stop=tenacity.stop_after_delay(timeout_s * 3),
        wait=tenacity.wait_exponential(multiplier=0.1, max=2),
        reraise=True,
    )


def end_offsets(bootstrap: str, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """High watermark (next offset to be written) per partition of ``topic``.

    Transient errors (no leader yet after a broker start, timeouts) are retried for up to
    ``timeout_s`` seconds (tenacity); others raise ``KafkaException``.
    """
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "lvlup-admin-probe",
                         "enable.auto.commit": False})

    def read() -> dict[int, int]:
        meta = consumer.list_topics(topic, timeout=timeout_s)
        out: dict[int, int] = {}
        for pid in meta.topics[topic].partitions:
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, pid), timeout=timeout_s
            )
            out[pid] = high
        return out

    try:
        return transient_retry(timeout_s)(read)
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, partitions: Iterable[tuple[str, int]],
                      timeout_s: float = 10.0) -> dict[tuple[str, int], int]:
    """``{(topic, partition): committed offset}`` of ``group`` (-1001 when none committed).

    Transient errors (the group coordinator moving or loading after a broker restart,
    timeouts) are retried for up to ``3 × timeout_s`` seconds (tenacity); others raise
    ``KafkaException``.
    """
    from confluent_kafka import Consumer, TopicPartition

    wanted = [TopicPartition(t, p) for t, p in partitions]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    try:
        got = transient_retry(timeout_s)(lambda: consumer.committed(wanted, timeout=timeout_s))
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): tp.offset for tp in got}
