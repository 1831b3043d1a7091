"""Topic administration on a Kafka cluster (confluent-kafka ``AdminClient``).

Topics are created explicitly with their partition count and configs, idempotently: an
existing topic with the same partition count is left alone; one with a different count is an
error (Faust would fail later with ``PartitionsMismatch``, and repartitioning breaks keyed
order). Offset and metadata reads (``end_offsets``, ``committed_offsets``, ``topic_partitions``,
the retry policy) live in :mod:`streams.offsets` and are re-exported here for older callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import tenacity
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from streams.errors import LvlupError
from streams.offsets import (
    admin_client,
    committed_offsets,
    end_offsets,
    is_transient,
    topic_partitions,
    transient_retry,
)

__all__ = [
    "NewTopicSpec", "committed_offsets", "create_topics", "delete_topics", "end_offsets",
    "is_transient", "topic_partitions", "transient_retry",
]


@dataclass(frozen=True)
class NewTopicSpec:
    """A topic to create: ``name``, ``partitions``, ``replication``, and broker ``config`` (an
    admin request; a topic's definition is the catalog's :class:`schemas.catalog.TopicSpec`)."""

    name: str
    partitions: int
    replication: int = 1
    config: Mapping[str, str] = field(default_factory=dict)


def _admin(bootstrap: str) -> AdminClient:
    return admin_client(bootstrap)  # the process's connected client (streams.offsets says why)


def create_topics(
    bootstrap: str, specs: Iterable[NewTopicSpec], timeout_s: float = 30.0
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
