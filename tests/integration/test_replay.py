"""Replay and audit: a rebuild certifies the views equal the log; a corrupted row is named;
the audit trail lists an entity's records in order with their positions."""

from __future__ import annotations

import os
import threading

import pytest
from sqlalchemy import create_engine, text

from schemas.catalog import load_catalog
from schemas.codec import load_codec
from sinks.app import build_sink
from sinks.replay import rebuild_postgres
from streams.producer import EventProducer
from streams.sample import SampleStream
from streams.settings import Settings

from .sink_support import wait_caught_up
from .test_sinks import pg_db  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _settings(url: str) -> Settings:
    old = os.environ.get("LVLUP_POSTGRES__URL")
    os.environ["LVLUP_POSTGRES__URL"] = url
    try:
        return Settings()
    finally:
        if old is None:
            os.environ.pop("LVLUP_POSTGRES__URL")
        else:
            os.environ["LVLUP_POSTGRES__URL"] = old


def test_rebuild_certifies_equal_and_names_a_corrupted_row(bootstrap, pg_db):  # noqa: F811
    settings = _settings(pg_db)
    codec, catalog = load_codec(), load_catalog()
    producer = EventProducer(bootstrap, codec, catalog, name="test-replay")
    for record_type, record in SampleStream(seed=31).records(1500):
        producer.emit(record_type, record)
    producer.close()
    engine = create_engine(pg_db)
    group = "test.live." + os.urandom(4).hex()
    topics = list(catalog.names)
    runner = build_sink(settings, codec, topics, kind="postgres", engine=engine, group=group)
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_caught_up(engine, group, bootstrap, topics)
    finally:
        runner.stop()
        thread.join(60)

    cert = rebuild_postgres(settings, live_group=group)
    assert cert.equal, cert.mismatches
    assert cert.views["learning_logs"]["rows_live"] >= 1 and len(cert.schema_fingerprints) > 20
    assert (cert.offsets and len(cert.code_version) in (7, 40)) or cert.code_version == "unknown"

    with engine.begin() as conn:
        victim = conn.execute(text("SELECT event_id FROM learning_logs ORDER BY event_id "
                                   "LIMIT 1")).scalar_one()
        conn.execute(text("UPDATE learning_logs SET insight = 'tampered' WHERE event_id = :e"),
                     {"e": victim})
    tampered = rebuild_postgres(settings, live_group=group)
    engine.dispose()
    assert not tampered.equal
    assert tampered.mismatches == {"learning_logs": [victim]}


def test_audit_trail_lists_an_entitys_records_in_order(tmp_path, monkeypatch):
    from sinks.audit import audit_trail
    from sinks.clickhouse.client import ChdbClient
    from sinks.clickhouse.migrate import migrate_up
    from sinks.clickhouse.writer import ClickHouseWriter
    from sinks.records import Batch, ConsumedRecord

    client = ChdbClient(tmp_path / "ch")
    migrate_up(client, "lvlup")
    batch = Batch()
    for offset, (rt, rec) in enumerate(SampleStream(seed=4).records(400)):
        batch.add(ConsumedRecord(f"t.{rt}", 0, offset, rec["occurred_at"], rt, rec))
    ClickHouseWriter(client, "lvlup").write("g", batch)
    client.close()
    monkeypatch.setenv("LVLUP_CLICKHOUSE__CHDB_PATH", str(tmp_path / "ch"))
    monkeypatch.setenv("LVLUP_DATA_DIR", str(tmp_path / "data"))
    rows = audit_trail(Settings(), "guardian-1")
    expected = [r for r in batch.records if r.record.get("agent_id") == "guardian-1"]
    assert len(rows) == len(expected) > 10
    assert [r["offset"] for r in rows] == [r.offset for r in sorted(
        expected, key=lambda r: (r.record["occurred_at"], r.topic, r.offset))]
    with pytest.raises(Exception, match="not an id"):
        audit_trail(Settings(), "x' OR 1=1 --")
