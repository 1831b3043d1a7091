"""`lvlup emit` and dead-letter topics against the real broker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.bench.sample import SampleStream
from schemas.catalog import Writer, dlq_topic, load_catalog
from schemas.codec import load_codec
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.runner import SinkConfig, SinkRunner
from streams.dlq import DeadLetterQueue, DlqLimitExceeded, DlqPolicy
from streams.emit import emit_lines
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics, end_offsets
from streams.producer import EventProducer

from .sink_support import PrefixRouter, read_log

pytestmark = pytest.mark.integration

N = 100_000


def _json_line(record_type: str, record: dict) -> str:
    return json.dumps({"type": record_type, **record})


def _malformed(i: int, good: str) -> tuple[str, str]:
    """(line, expected reason fragment) for the i-th malformed line."""
    kind = i % 5
    obj = json.loads(good)
    if kind == 0:
        return good[: len(good) // 2], "invalid JSON"
    if kind == 1:
        obj.pop("event_id")
        return json.dumps(obj), "event_id"
    if kind == 2:
        obj["occurred_at"] = "yesterday-ish"
        return json.dumps(obj), "occurred_at"
    if kind == 3:
        obj["type"] = "no_such_record"
        return json.dumps(obj), "unknown record type"
    if i < 25:  # a few oversize lines (over 1 MiB encoded): enough to prove the limit
        obj["insight" if obj["type"] == "learning_event" else "producer"] = "x" * (1 << 20)
        return json.dumps(obj), "byte limit"
    return "[1, 2, 3]", "JSON object"


def test_emit_100k_lines_with_one_percent_malformed(bootstrap):
    router = PrefixRouter(f"test.emit{uuid.uuid4().hex[:6]}.")
    stream = list(SampleStream(seed=21).records(N))
    topics = router.topics(bootstrap, {rt for rt, _ in stream})
    lines: list[str] = []
    expected_bad: dict[int, str] = {}
    good_ids: set[str] = set()
    for i, (rt, rec) in enumerate(stream):
        line = _json_line(rt, rec)
        if i % 100 == 50:
            line, why = _malformed(len(expected_bad), line)
            expected_bad[i + 1] = why
        else:
            good_ids.add(rec["event_id"])
        lines.append(line)
    producer = EventProducer(bootstrap, load_codec(), router, name="test-emit")
    started = time.perf_counter()
    # the platform's own records
    report = emit_lines(lines, producer, load_catalog(), writer=Writer.ADMIN)
    elapsed = time.perf_counter() - started
    producer.close()
    print(f"emit: {N} lines in {elapsed:.1f} s ({N / elapsed:,.0f} lines/s)")
    try:
        assert report.accepted == N - len(expected_bad) == len(good_ids)
        assert report.failed == 0
        assert {r.line for r in report.rejected} == set(expected_bad)
        for rej in report.rejected:
            assert expected_bad[rej.line] in rej.reason, (rej.line, rej.reason)
        log = read_log(bootstrap, load_codec(), topics)
        assert sorted(r.record["event_id"] for r in log) == sorted(good_ids)
    finally:
        delete_topics(bootstrap, topics)


def test_emit_cli_reports_lines_and_exit_code(stack, tmp_path):
    catalog = load_catalog()
    before = sum(end_offsets(stack.kafka.bootstrap(), catalog.for_record("learning_event").name)
                 .values())
    rt, rec = next(r for r in SampleStream(seed=3).records(50) if r[0] == "learning_event")
    good = _json_line(rt, {**rec, "event_id": str(uuid.uuid4())})
    path = tmp_path / "in.jsonl"
    path.write_text(f"{good}\n\n{{broken\n" + json.dumps({"type": "nope"}) + "\n")
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "infra.cli", "emit", str(path)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stderr
    assert "accepted 1, rejected 2, failed 0" in proc.stdout
    assert "line 3: rejected: invalid JSON" in proc.stderr
    assert "line 4: rejected: unknown record type 'nope'" in proc.stderr
    after = sum(end_offsets(stack.kafka.bootstrap(), catalog.for_record("learning_event").name)
                .values())
    assert after - before == 1

    ok = subprocess.run([sys.executable, "-m", "infra.cli", "emit", "-"], input=good.replace(
        rec["event_id"], str(uuid.uuid4())) + "\n", env=env, capture_output=True, text=True,
        timeout=120, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "accepted 1, rejected 0" in ok.stdout


def _runner(bootstrap, topic, group, client, policy):
    config = SinkConfig(group=group, topics=(topic,), max_batch=100, max_wait_s=0.2, dlq=policy)
    create_topics(bootstrap, [NewTopicSpec(dlq_topic(group), 1)])
    dlq = DeadLetterQueue(Producer({"bootstrap.servers": bootstrap, "acks": "all"}), group,
                          policy)
    return SinkRunner(bootstrap, config, ClickHouseWriter(client, "lvlup"), load_codec(), dlq)


def test_poison_records_go_to_the_dlq_with_headers_and_the_consumer_goes_on(
        bootstrap, make_topic, tmp_path):
    topic = make_topic(partitions=1)
    codec = load_codec()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    records = [r for r in SampleStream(seed=5).records(60)][:53]
    poison_at = {10, 30, 45}
    for i, (rt, rec) in enumerate(records):
        value = b"\x00not avro at all" if i in poison_at else codec.encode(rt, rec)
        producer.produce(topic, value=value, key=b"k", headers=[("trace", b"t-%d" % i)])
    producer.flush(30)
    client = ChdbClient(tmp_path / "ch")
    migrate_up(client, "lvlup")
    group = f"dlq-{uuid.uuid4().hex[:8]}"
    runner = _runner(bootstrap, topic, group, client, DlqPolicy(max_consecutive=5))
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while runner.stats.last_commit.get((topic, 0), 0) < 53 and time.monotonic() < deadline:
        time.sleep(0.2)
    runner.stop()
    thread.join(30)
    try:
        assert int(client.query("SELECT count() FROM lvlup.events").scalar()) == 50
        dead = read_dlq(bootstrap, dlq_topic(group), 3)
        assert sorted(int(h["dlq.source.offset"]) for h, _ in dead) == sorted(poison_at)
        for headers, value in dead:
            assert value == b"\x00not avro at all"
            assert headers["dlq.error.class"] == b"DecodeError"
            assert headers["dlq.source.topic"] == topic.encode()
            assert headers["dlq.group"] == group.encode()
            assert headers["trace"] == b"t-%d" % int(headers["dlq.source.offset"])
    finally:
        client.close()
        delete_topics(bootstrap, [dlq_topic(group)])


def read_dlq(bootstrap: str, topic: str, n: int) -> list[tuple[dict[str, bytes], bytes]]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": uuid.uuid4().hex})
    consumer.assign([TopicPartition(topic, 0, 0)])
    out = []
    try:
        deadline = time.monotonic() + 30
        while len(out) < n and time.monotonic() < deadline:
            for m in consumer.consume(n - len(out), timeout=2):
                out.append((dict(m.headers()), m.value()))
    finally:
        consumer.close()
    return out


def test_dlq_limit_stops_the_consumer_loudly(bootstrap, make_topic, tmp_path):
    topic = make_topic(partitions=1)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for _ in range(20):
        producer.produce(topic, value=b"garbage")
    producer.flush(30)
    client = ChdbClient(tmp_path / "ch")
    migrate_up(client, "lvlup")
    group = f"dlqlim-{uuid.uuid4().hex[:8]}"
    runner = _runner(bootstrap, topic, group, client, DlqPolicy(max_consecutive=5))
    try:
        with pytest.raises(DlqLimitExceeded, match="5 invalid records in a row"):
            runner.run()
        # nothing past the limit was committed: a fixed consumer sees those records again
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
        committed = consumer.committed([TopicPartition(topic, 0)], timeout=10)[0].offset
        consumer.close()
        assert committed < 20
    finally:
        client.close()
        delete_topics(bootstrap, [dlq_topic(group)])
