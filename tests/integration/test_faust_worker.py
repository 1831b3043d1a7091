"""A Faust worker (subprocess) counts into a table with a compacted changelog, forwards
records, and after a restart recovers the table from the changelog."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ConfigResource
from prometheus_client import CollectorRegistry

from streams.kafka_admin import delete_topics, end_offsets, topic_partitions
from streams.watchdog import Watchdog, group_positions

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KEYS = 30
PER_KEY = 100
PARTITIONS = 3
STUCK_S = 30.0  # no committed progress while lagging for this long = stuck (watchdog)


def _produce(bootstrap: str, topic: str, rounds: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True})
    for r in range(rounds):
        for k in range(KEYS):
            producer.produce(topic, key=f"k{k}", value=str(r))
    assert producer.flush(30) == 0


def _wait_for(bootstrap: str, topic: str, total: int, worker: subprocess.Popen, log: Path,
              timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if topic not in topic_partitions(bootstrap):
            time.sleep(0.5)
            continue
        if sum(end_offsets(bootstrap, topic).values()) >= total:
            return
        if worker.poll() is not None:
            raise AssertionError(f"worker exited {worker.returncode}: {log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"{topic} did not reach {total} records; log: {log.read_text()[-3000:]}")


def _read_all(bootstrap: str, topic: str) -> list[tuple[bytes, bytes]]:
    total = sum(end_offsets(bootstrap, topic).values())
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"read-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 60
    try:
        while len(out) < total and time.monotonic() < deadline:
            for m in consumer.consume(num_messages=1000, timeout=1.0):
                assert m.error() is None, m.error()
                out.append((m.key(), m.value()))
    finally:
        consumer.close()
    return out


def _read_after(bootstrap: str, topic: str, offsets: dict[int, int]) -> list[tuple[bytes, bytes]]:
    """Records of ``topic`` at or after ``offsets`` (per partition)."""
    from confluent_kafka import TopicPartition

    ends = end_offsets(bootstrap, topic)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"after-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    out: list[tuple[bytes, bytes]] = []
    try:
        for partition, start in offsets.items():
            want = ends[partition] - start
            if want <= 0:
                continue
            consumer.assign([TopicPartition(topic, partition, start)])
            got = 0
            while got < want:
                batch = consumer.consume(want - got, timeout=5)
                if not batch:
                    break
                for m in batch:
                    got += 1
                    out.append((m.key(), m.value()))
    finally:
        consumer.close()
    return out


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.apps.counter_app", "worker", "--without-web",
         "-l", "info"],
        cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT,
    )


def _stop_worker(worker: subprocess.Popen) -> None:
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(60)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)


def test_faust_table_changelog_survives_restart(stack, bootstrap, make_topic, tmp_path):
    source = make_topic(partitions=PARTITIONS, prefix="faust-src")
    sink = make_topic(partitions=PARTITIONS, prefix="faust-out")
    app_id = f"counter-{uuid.uuid4().hex[:8]}"
    changelog = f"{app_id}-counts-changelog"
    env = {**os.environ, "COUNTER_APP_ID": app_id, "COUNTER_SOURCE": source,
           "COUNTER_SINK": sink, "COUNTER_PARTITIONS": str(PARTITIONS),
           "LVLUP_DATA_DIR": str(tmp_path / "data")}
    log = tmp_path / "worker.log"
    try:
        _produce(bootstrap, source, PER_KEY)
        worker = _start_worker(env, log)
        try:
            _wait_for(bootstrap, sink, KEYS * PER_KEY, worker, log)
        finally:
            _stop_worker(worker)

        # the changelog is a compacted topic holding each key's latest count
        admin = AdminClient({"bootstrap.servers": bootstrap})
        resource = ConfigResource(ConfigResource.Type.TOPIC, changelog)
        config = admin.describe_configs([resource])[resource].result(timeout=10)
        assert config["cleanup.policy"].value == "compact"
        latest: dict[str, int] = {}
        for key, value in _read_all(bootstrap, changelog):
            latest[json.loads(key)] = json.loads(value)
        assert latest == {f"k{k}": PER_KEY for k in range(KEYS)}

        # One more record per key. The restarted worker must continue from the table it
        # recovered from the changelog. At-least-once: records processed but not yet committed
        # when the worker stopped are processed again, so a counter may over-count by that
        # tail (faust-streaming/faust#502) — but it never starts again from zero.
        #
        # Should a partition of the restarted worker stay unconsumed (a live-but-deaf consumer,
        # faust-streaming/faust#175), the platform's stuck-consumer watchdog reports it; the
        # test then restarts the worker once and says so. (The failures this test met in CI
        # were another Faust race — events handled before table recovery — fixed by
        # streams.app.recovered.)
        before = end_offsets(bootstrap, sink)
        _produce(bootstrap, source, 1)
        worker = _start_worker(env, log)
        watchdog = Watchdog(CollectorRegistry(), stuck_after_s=STUCK_S)
        recycled = 0
        try:
            deadline = time.monotonic() + 240
            while True:
                counts: dict[str, list[int]] = defaultdict(list)
                for key, value in _read_all(bootstrap, sink):
                    name, count = value.decode().split("=")
                    assert name == key.decode()
                    counts[name].append(int(count))
                if all(max(counts[f"k{k}"]) >= PER_KEY + 1 for k in range(KEYS)):
                    break
                stuck = watchdog.observe(app_id, group_positions(bootstrap, app_id, [source]))
                if stuck and not recycled:
                    print(f"stuck after restart: {stuck}; recycling the worker once")
                    _stop_worker(worker)
                    worker = _start_worker(env, log)
                    recycled += 1
                assert time.monotonic() < deadline, (
                    f"the restarted worker did not catch up (recycled {recycled}): "
                    f"{ {k: max(v) for k, v in sorted(counts.items())} }; "
                    f"log: {log.read_text()[-6000:]}")
                assert worker.poll() is None, log.read_text()[-3000:]
                time.sleep(1)
        finally:
            _stop_worker(worker)
        after_restart = _read_after(bootstrap, sink, before)
        assert after_restart, "nothing was forwarded after the restart"
        for key, value in after_restart:
            _name, count = value.decode().split("=")
            assert int(count) > PER_KEY, f"{key!r} restarted from {count}: table not recovered"
    finally:
        delete_topics(bootstrap, [t for t in topic_partitions(bootstrap) if t.startswith(app_id)])
