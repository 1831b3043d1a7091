"""A SIGSTOPped sink is reported stuck by the watchdog; SIGCONT clears it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Producer
from prometheus_client import CollectorRegistry

from infra.bench.sample import SampleStream
from schemas.codec import load_codec
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from streams.watchdog import Watchdog, group_positions

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def _produce(bootstrap, topic, n, seed):
    codec, producer = load_codec(), Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for rt, rec in SampleStream(seed=seed).records(n):
        producer.produce(topic, value=codec.encode(rt, rec))
    producer.flush(30)


def test_a_stopped_consumer_is_reported_stuck(bootstrap, make_topic, tmp_path):
    topic = make_topic(partitions=1)
    chdb = tmp_path / "ch"
    client = ChdbClient(chdb)
    migrate_up(client, "lvlup")
    client.close()
    suffix = f".wd.{uuid.uuid4().hex[:6]}"
    group = "lvlup.sinks.clickhouse" + suffix
    env = {**os.environ, "LVLUP_CLICKHOUSE__CHDB_PATH": str(chdb)}
    sink = subprocess.Popen([sys.executable, "-m", "infra.cli", "sink", "clickhouse",
                             "--topics", topic, "--group-suffix", suffix], cwd=ROOT, env=env,
                            stdout=(tmp_path / "sink.log").open("wb"), stderr=subprocess.STDOUT)
    dog = Watchdog(CollectorRegistry(), stuck_after_s=4)
    try:
        _produce(bootstrap, topic, 200, 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pos = group_positions(bootstrap, group, [topic])
            if pos and all(c >= e for c, e in pos.values()):
                break
            time.sleep(0.5)
        assert dog.observe(group, group_positions(bootstrap, group, [topic])) == []
        os.kill(sink.pid, signal.SIGSTOP)
        _produce(bootstrap, topic, 200, 2)
        stuck = []
        deadline = time.monotonic() + 30
        while not stuck and time.monotonic() < deadline:
            stuck = dog.observe(group, group_positions(bootstrap, group, [topic]))
            time.sleep(1)
        assert [(s.topic, s.lag) for s in stuck] == [(topic, 200)]
        os.kill(sink.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not dog.observe(group, group_positions(bootstrap, group, [topic])):
                pos = group_positions(bootstrap, group, [topic])
                if all(c >= e for c, e in pos.values()):
                    break
            time.sleep(1)
        assert dog.observe(group, group_positions(bootstrap, group, [topic])) == []
    finally:
        os.kill(sink.pid, signal.SIGCONT)
        sink.terminate()
        sink.wait(60)
