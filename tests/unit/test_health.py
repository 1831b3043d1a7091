"""Consumer health for `lvlup run`: lag per group and per-group stuck thresholds."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from infra.health import GROUP_THRESHOLDS_S, ConsumerHealth
from schemas.catalog import load_catalog


def test_watched_groups_read_the_topics_the_catalog_gives_them():
    health = ConsumerHealth("unused:0", load_catalog(), CollectorRegistry())
    assert set(health.topics) == set(GROUP_THRESHOLDS_S)
    assert "lvlup.inference.requests" in health.topics["lvlup.inference.workers"]
    assert "lvlup.custody.requests" in health.topics["lvlup.agents.custody"]
    assert all(health.topics.values())  # every watched group consumes something


def test_each_group_is_stuck_after_its_own_threshold():
    now = [0.0]
    frozen = {("t", 0): (10, 50)}  # committed 10 of 50 and not moving

    def positions(_bootstrap, _group, _topics):
        return dict(frozen)

    health = ConsumerHealth("unused:0", load_catalog(), CollectorRegistry(),
                            {"lvlup.sinks.postgres": 60.0, "lvlup.agents.custody": 900.0},
                            positions=positions, clock=lambda: now[0])
    first = health.read()
    assert first.lag == {"lvlup.sinks.postgres": 40, "lvlup.agents.custody": 40}
    assert first.stuck == []
    now[0] = 61.0
    assert [s.group for s in health.read().stuck] == ["lvlup.sinks.postgres"]
    now[0] = 901.0
    assert sorted(s.group for s in health.read().stuck) == ["lvlup.agents.custody",
                                                              "lvlup.sinks.postgres"]
    frozen[("t", 0)] = (50, 50)  # caught up: nothing stuck, no lag
    caught_up = health.read()
    assert caught_up.stuck == [] and set(caught_up.lag.values()) == {0}


def test_partitions_a_group_never_committed_on_are_not_watched():
    def positions(_bootstrap, _group, _topics):
        return {("read-without-group", 0): (0, 50), ("consumed", 0): (5, 5)}

    health = ConsumerHealth("unused:0", load_catalog(), CollectorRegistry(),
                            {"lvlup.agents.imperium": 0.0}, positions=positions,
                            clock=lambda: 100.0)
    reading = health.read()
    assert reading.lag == {"lvlup.agents.imperium": 0} and reading.stuck == []
