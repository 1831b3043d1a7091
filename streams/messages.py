"""Typed accessors for confluent-kafka messages (its stubs make every field optional)."""

from __future__ import annotations

from confluent_kafka import Message

__all__ = ["message_headers", "message_position"]

Header = tuple[str, bytes | None]


def message_position(msg: Message) -> tuple[str, int, int]:
    """``(topic, partition, offset)`` of a produced or consumed data message.

    Raises ``ValueError`` for a message without a position (an error event).
    """
    topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
    if topic is None or partition is None or offset is None:
        raise ValueError(f"message has no log position: {msg.error()}")
    return topic, partition, offset


def message_headers(msg: Message) -> list[Header]:
    """The message's headers as ``(name, bytes | None)`` pairs, in order."""
    raw = msg.headers()
    if not raw:
        return []
    items = raw.items() if isinstance(raw, dict) else raw
    return [(k, v.encode() if isinstance(v, str) else v) for k, v in items]
