"""The consumer-group enum against the topic catalog: every group a process joins consumes
catalog topics, and the topics each worker subscribes to list its group as a consumer."""

from __future__ import annotations

import pytest

from schemas.catalog import load_catalog
from schemas.groups import ConsumerGroup


@pytest.mark.parametrize("group", list(ConsumerGroup))
def test_every_group_consumes_a_catalog_topic(group):
    assert [t.name for t in load_catalog().topics if group in t.consumers]


@pytest.mark.parametrize(("group", "topic"), [
    (ConsumerGroup.CUSTODY, "lvlup.custody.requests"),
    (ConsumerGroup.PROPOSALS, "lvlup.proposals.submitted"),
    (ConsumerGroup.PROPOSALS, "lvlup.proposals.decided"),
    (ConsumerGroup.PROPOSALS, "lvlup.agents.levels"),
    (ConsumerGroup.CONQUEST, "lvlup.builds.events"),
    (ConsumerGroup.INFERENCE, "lvlup.inference.requests"),
    (ConsumerGroup.IMPERIUM, "lvlup.learning.cycles.requested"),
])
def test_a_workers_input_topic_lists_its_group(group, topic):
    assert group in load_catalog().topic(topic).consumers


def test_the_worker_constants_are_the_enum_members():
    from agents.conquest.worker import CONQUEST_GROUP
    from agents.custody.worker import CUSTODY_GROUP
    from agents.imperium import IMPERIUM_GROUP
    from agents.proposals.worker import PROPOSALS_GROUP
    from inference.kafka_worker import INFERENCE_GROUP
    from sinks.app import CLICKHOUSE_GROUP, POSTGRES_GROUP

    assert {CONQUEST_GROUP, CUSTODY_GROUP, IMPERIUM_GROUP, PROPOSALS_GROUP, INFERENCE_GROUP,
            CLICKHOUSE_GROUP, POSTGRES_GROUP} == set(ConsumerGroup)
