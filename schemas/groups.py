"""The consumer groups the platform's processes join: one enum, the names the topic catalog's
``consumers`` lists use (snuba keeps its consumer groups in one enum the same way).

A process takes its group from here (workers, sinks, the health watch of ``lvlup run``);
``tests/schemas/test_groups.py`` checks that every member consumes at least one catalog topic.
A catalog ``consumers`` entry that is not a member names a planned or logical reader (e.g.
``lvlup.agents.guardian``: guardian runs inside the proposals worker) and joins no group.
Dead-letter topics are ``<group>.dlq`` (:func:`schemas.catalog.dlq_topic`).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ConsumerGroup"]


class ConsumerGroup(StrEnum):
    """Consumer group ids (Kafka ``group.id``; for Faust workers also the app id)."""

    POSTGRES_SINK = "lvlup.sinks.postgres"
    CLICKHOUSE_SINK = "lvlup.sinks.clickhouse"
    INFERENCE = "lvlup.inference.workers"
    IMPERIUM = "lvlup.agents.imperium"
    CUSTODY = "lvlup.agents.custody"
    PROPOSALS = "lvlup.agents.proposals"
    CONQUEST = "lvlup.agents.conquest"
