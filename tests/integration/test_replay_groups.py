"""``lvlup replay reset-group`` against the real broker: refused while the group has a
member, a dry run changes nothing, ``--execute`` commits the offsets at the time given."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from sinks.replay.positions import committed_offsets

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _lvlup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "infra.cli", "replay", "reset-group", *args],
                          env={**os.environ, "COLUMNS": "200"}, capture_output=True, text=True,
                          timeout=120, check=False, cwd=ROOT)


def _produce(bootstrap: str, topic: str, value: bytes, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(per_partition * 2):
        producer.produce(topic, value=value, partition=i % 2)
    producer.flush(30)


def test_reset_group_dry_run_refusal_and_execute(bootstrap, make_topic):
    topic = make_topic(partitions=2, prefix="reset")
    _produce(bootstrap, topic, b"before", 5)
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    _produce(bootstrap, topic, b"after", 3)
    group = f"test.reset.{topic}"
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "session.timeout.ms": 6000})
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 60
    while seen < 16 and time.monotonic() < deadline:
        seen += len(consumer.consume(16, timeout=1))
    consumer.commit(asynchronous=False)
    assert committed_offsets(bootstrap, group) == {(topic, 0): 8, (topic, 1): 8}

    refused = _lvlup(group, "--to-datetime", str(middle))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "active member" in refused.stderr
    consumer.close()

    dry = _lvlup(group, "--to-datetime", str(middle))
    assert dry.returncode == 0, dry.stderr
    assert "dry run" in dry.stdout and "-3" in dry.stdout  # 8 → 5 on each partition
    assert committed_offsets(bootstrap, group) == {(topic, 0): 8, (topic, 1): 8}

    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle / 1000)) + (
        f".{middle % 1000:03d}Z")
    done = _lvlup(group, "--to-datetime", iso, "--execute")
    assert done.returncode == 0, done.stderr
    assert committed_offsets(bootstrap, group) == {(topic, 0): 5, (topic, 1): 5}

    unknown = _lvlup(f"{group}.none", "--to-datetime", str(middle))
    assert unknown.returncode == 2 and "--topic" in unknown.stderr
    fresh = _lvlup(f"{group}.none", "--to-datetime", "0", "--topic", topic, "--execute")
    assert fresh.returncode == 0, fresh.stderr
    assert committed_offsets(bootstrap, f"{group}.none") == {(topic, 0): 0, (topic, 1): 0}
