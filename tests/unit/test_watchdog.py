"""The stuck-consumer watchdog on readings with a fake clock."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streams.watchdog import Watchdog


def test_stuck_when_committed_does_not_move_while_lagging():
    now = [0.0]
    reg = CollectorRegistry()
    dog = Watchdog(reg, stuck_after_s=60, clock=lambda: now[0])
    assert dog.observe("g", {("t", 0): (10, 20), ("t", 1): (5, 5)}) == []
    now[0] = 59
    assert dog.observe("g", {("t", 0): (10, 25), ("t", 1): (5, 5)}) == []
    now[0] = 61
    stuck = dog.observe("g", {("t", 0): (10, 30), ("t", 1): (5, 5)})
    assert [(s.topic, s.partition, s.lag) for s in stuck] == [("t", 0, 20)]
    assert reg.get_sample_value("lvlup_consumer_stuck",
                                {"group": "g", "topic": "t", "partition": "0"}) == 1
    assert reg.get_sample_value("lvlup_consumer_lag",
                                {"group": "g", "topic": "t", "partition": "0"}) == 20
    # no lag means not stuck, however long the offset stays put
    assert reg.get_sample_value("lvlup_consumer_stuck",
                                {"group": "g", "topic": "t", "partition": "1"}) == 0
    now[0] = 62  # progress clears it
    assert dog.observe("g", {("t", 0): (11, 30)}) == []
    assert reg.get_sample_value("lvlup_consumer_stuck",
                                {"group": "g", "topic": "t", "partition": "0"}) == 0
