"""``lvlup replay reset-group``: move a consumer group's committed offsets to a point in time.

Like Kafka's ``kafka-consumer-groups --reset-offsets --to-datetime``, a dry run by default:
:func:`plan_reset` lists, per partition, the committed offset and the target — the first
offset whose record timestamp is at or after the time (ListOffsets by timestamp; the log end
when none is). It refuses while the group has active members (``describe_consumer_groups``):
a running consumer would overwrite the new offsets with its next commit, and Kafka rejects
the change anyway. :func:`execute_reset` checks again and commits the targets
(``alter_consumer_group_offsets``).

The Postgres sink resumes from the offsets it stores with its data (``sink_offsets``), not
from Kafka's: resetting its group moves nothing (:func:`resume_note` says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from sinks.app import POSTGRES_GROUP
from sinks.records import TopicPartitionKey
from streams.errors import LvlupError
from streams.offsets import admin_client, committed_offsets, offsets_at, partitions_of

__all__ = ["GroupActive", "OffsetMove", "ResetPlan", "execute_reset", "plan_reset",
           "resume_note"]


class GroupActive(LvlupError):
    """The group has members: its offsets cannot be reset now."""


@dataclass(frozen=True)
class OffsetMove:
    """One partition: the ``current`` committed offset (None: none) and the ``target``."""

    topic: str
    partition: int
    current: int | None
    target: int

    @property
    def delta(self) -> int | None:
        """``target − current`` (negative: records will be read again)."""
        return None if self.current is None else self.target - self.current


@dataclass(frozen=True)
class ResetPlan:
    """The moves of ``group`` to ``to_ms`` (ms since the epoch, UTC); ``state`` is the
    group's state when planned."""

    group: str
    to_ms: int
    state: str
    moves: tuple[OffsetMove, ...]


def _describe(admin: AdminClient, group: str, timeout_s: float) -> tuple[str, list[str]]:
    futures = admin.describe_consumer_groups([group], request_timeout=timeout_s)
    try:
        desc = futures[group].result(timeout=timeout_s)
    except KafkaException as exc:
        raise LvlupError(f"describing group {group} failed: {exc.args[0]}") from exc
    state = getattr(desc.state, "name", str(desc.state))
    members = [f"{m.client_id}@{m.host}" for m in desc.members or ()]
    return state, members


def _refuse_if_active(admin: AdminClient, group: str, timeout_s: float) -> str:
    state, members = _describe(admin, group, timeout_s)
    if members:
        shown = ", ".join(members[:3]) + (" …" if len(members) > 3 else "")
        raise GroupActive(f"group {group} has {len(members)} active member(s) ({shown}): "
                          "stop its consumers first")
    return state


def plan_reset(bootstrap: str, group: str, to_ms: int, *, topics: Sequence[str] = (),
               timeout_s: float = 30.0) -> ResetPlan:
    """The per-partition moves of ``group`` to ``to_ms``, over ``topics`` (default: every
    partition the group has committed).

    Raises :class:`GroupActive` while the group has members, :class:`LvlupError` when there
    is nothing to move (no topic given and no committed offset).
    """
    admin = admin_client(bootstrap)
    state = _refuse_if_active(admin, group, timeout_s)
    committed = committed_offsets(bootstrap, group, timeout_s=timeout_s)
    tps: list[TopicPartitionKey]
    if topics:
        tps = partitions_of(bootstrap, topics)
        missing = sorted(set(topics) - {t for t, _ in tps})
        if missing:
            raise LvlupError(f"no such topic: {', '.join(missing)}")
    else:
        tps = sorted(committed)
    if not tps:
        raise LvlupError(f"group {group} has no committed offsets: name the topics with --topic")
    targets = offsets_at(bootstrap, tps, to_ms, timeout_s)
    moves = tuple(OffsetMove(t, p, committed.get((t, p)), targets[(t, p)]) for t, p in tps)
    return ResetPlan(group, to_ms, state, moves)


def execute_reset(bootstrap: str, plan: ResetPlan, timeout_s: float = 30.0) -> None:
    """Commit ``plan``'s targets for its group (refusing again if members joined since).

    Raises :class:`GroupActive` or :class:`LvlupError` (the broker refused).
    """
    admin = admin_client(bootstrap)
    _refuse_if_active(admin, plan.group, timeout_s)
    request = ConsumerGroupTopicPartitions(
        plan.group, [TopicPartition(m.topic, m.partition, m.target) for m in plan.moves])
    futures = admin.alter_consumer_group_offsets([request], request_timeout=timeout_s)
    try:
        result = futures[plan.group].result(timeout=timeout_s)
    except KafkaException as exc:
        raise LvlupError(f"resetting group {plan.group} failed: {exc.args[0]}") from exc
    failed = [f"{tp.topic}:{tp.partition} ({tp.error})" for tp in result.topic_partitions or ()
              if tp.error is not None]
    if failed:
        raise LvlupError(f"resetting group {plan.group} failed for {', '.join(failed[:5])}")


def resume_note(group: str) -> str | None:
    """A warning when ``group`` does not resume from Kafka's offsets (the Postgres sink)."""
    if group.startswith(POSTGRES_GROUP):
        return (f"{group} resumes from the offsets stored with its data (Postgres "
                "sink_offsets), not from Kafka's: this reset will not move it")
    return None
