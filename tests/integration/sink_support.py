"""Helpers for the sink tests: per-test topics and database, the log's reference views."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from sqlalchemy import Engine, text

from infra.bench.sample import SampleStream
from schemas.catalog import load_catalog
from schemas.codec import Codec
from sinks.postgres.projection import merge_rows
from sinks.postgres.views import build_projections
from sinks.postgres.writer import to_date, to_datetime
from sinks.records import ConsumedRecord
from streams.kafka_admin import NewTopicSpec, create_topics, end_offsets
from streams.producer import EventProducer


class PrefixRouter:
    """Routes record types to catalog topics with a per-test prefix (the catalog's own
    :meth:`~schemas.catalog.Catalog.prefixed` routes), and creates them."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.catalog = load_catalog()
        self._routes = self.catalog.prefixed(prefix)

    def route(self, record_type: str) -> tuple[str, str]:
        return self._routes.route(record_type)

    def topics(self, bootstrap: str, record_types: Iterable[str]) -> list[str]:
        names = []
        specs = []
        for rt in sorted(set(record_types)):
            spec = self.catalog.for_record(rt)
            name = f"{self.prefix}{spec.name}"
            if name not in names:
                names.append(name)
                specs.append(NewTopicSpec(name, spec.partitions, 1, spec.config()))
        create_topics(bootstrap, specs)
        return names


def produce_sample(bootstrap: str, codec: Codec, router: PrefixRouter, n: int, seed: int,
                   start_ms: int | None = None) -> list[tuple[str, dict[str, Any]]]:
    stream = SampleStream(seed=seed) if start_ms is None else SampleStream(seed=seed,
                                                                            start_ms=start_ms)
    records = list(stream.records(n))
    producer = EventProducer(bootstrap, codec, router, name="test")
    for record_type, record in records:
        producer.emit(record_type, record)
    producer.close()
    return records


def read_log(bootstrap: str, codec: Codec, topics: list[str]) -> list[ConsumedRecord]:
    """Every record on ``topics``, decoded, in (topic, partition, offset) order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"ref-{uuid.uuid4().hex}",
                         "enable.auto.commit": False})
    out: list[ConsumedRecord] = []
    try:
        for topic in topics:
            for partition, high in end_offsets(bootstrap, topic).items():
                if high == 0:
                    continue
                consumer.assign([TopicPartition(topic, partition, 0)])
                got = 0
                while got < high:
                    for m in consumer.consume(min(5000, high - got), timeout=5):
                        assert m.error() is None, m.error()
                        rt, rec = codec.decode(m.value(), "latest")
                        out.append(ConsumedRecord(topic, partition, m.offset(),
                                                  m.timestamp()[1], rt, rec, m.key()))
                        got += 1
    finally:
        consumer.close()
    out.sort(key=lambda r: (r.topic, r.partition, r.offset))
    return out


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, date):
        return (value - date(1970, 1, 1)).days
    if isinstance(value, float):
        return round(value, 6)
    return value


def _row_key(row: dict[str, Any]) -> str:
    return json.dumps({k: _norm(v) for k, v in sorted(row.items())}, sort_keys=True,
                      default=str)


def reference_views(records: list[ConsumedRecord]) -> dict[str, set[str]]:
    """What every Postgres view must hold for ``records``, computed without a database."""
    out: dict[str, set[str]] = {}
    for proj in build_projections():
        rows = [row for rec in records if rec.record_type in proj.record_types
                for row in proj.to_rows(rec)]
        merged = merge_rows(proj, rows)
        convert = {c.name: c.type for c in proj.table.columns}
        full = []
        for row in merged:
            fixed = {}
            for col in proj.table.columns.keys():  # noqa: SIM118 - a ColumnCollection
                value = row.get(col)
                kind = type(convert[col]).__name__
                value = to_datetime(value) if kind == "DateTime" else value
                value = to_date(value) if kind == "Date" else value
                fixed[col] = value
            full.append(fixed)
        out[proj.name] = {_row_key(r) for r in full}
    return out


def db_views(engine: Engine) -> dict[str, set[str]]:
    out = {}
    with engine.connect() as conn:
        for proj in build_projections():
            rows = conn.execute(text(f'SELECT * FROM "{proj.name}"')).mappings().all()
            out[proj.name] = {_row_key(dict(r)) for r in rows}
    return out


def wait_caught_up(engine: Engine, group: str, bootstrap: str, topics: list[str],
                   timeout_s: float = 120) -> None:
    """Until the offsets stored in Postgres for ``group`` reach the topics' ends."""
    want = {(t, p): o for t in topics for p, o in end_offsets(bootstrap, t).items() if o}
    deadline = time.monotonic() + timeout_s
    have: dict[tuple[str, int], int] = {}
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT topic, partition, next_offset FROM sink_offsets "
                                     "WHERE consumer_group = :g"), {"g": group}).all()
        have = {(t, p): o for t, p, o in rows}
        if all(have.get(tp, 0) >= o for tp, o in want.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"group {group} not caught up: want {want}, have {have}")


def committed_caught_up(group: str, bootstrap: str, topics: list[str],
                        timeout_s: float = 120) -> None:
    """Until Kafka's committed offsets of ``group`` reach the topics' ends."""
    want = [TopicPartition(t, p, o) for t in topics for p, o in end_offsets(bootstrap, t).items()]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            got = {(tp.topic, tp.partition): tp.offset
                   for tp in consumer.committed([TopicPartition(t.topic, t.partition)
                                                 for t in want], timeout=10)}
            if all(got.get((t.topic, t.partition), -1) >= t.offset or t.offset == 0
                   for t in want):
                return
            time.sleep(0.5)
    finally:
        consumer.close()
    raise AssertionError(f"group {group} did not commit to the end of {topics}")
