"""Sinks on real Kafka + Postgres + chdb: views equal the log's reference after redelivery,
a SIGKILL between write and commit, and Postgres down for 20 s mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from infra.postgres import EmbeddedPostgres
from schemas.codec import load_codec
from sinks.app import build_sink
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.clickhouse.writer import ClickHouseWriter
from sinks.postgres.views import build_projections
from sinks.postgres.writer import PostgresWriter
from sinks.records import Batch
from streams.settings import Settings

from .sink_support import (
    PrefixRouter,
    committed_caught_up,
    db_views,
    produce_sample,
    read_log,
    reference_views,
    wait_caught_up,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_TYPES = ("agent_command", "learning_event", "token_usage", "inference_response",
                "custody_item_result", "guardian_finding", "agent_metrics", "error_event",
                "internet_learning_result")



@pytest.fixture
def codec():
    return load_codec()


@pytest.fixture
def routed(bootstrap):
    """A per-test router and its topics (deleted afterwards)."""
    from streams.kafka_admin import delete_topics

    router = PrefixRouter(f"test.{uuid.uuid4().hex[:8]}.")
    topics = router.topics(bootstrap, SAMPLE_TYPES)
    yield router, topics
    delete_topics(bootstrap, topics)


def _settings_for(url: str, **extra: str) -> Settings:
    env = {"LVLUP_POSTGRES__URL": url, **extra}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return Settings()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _run_in_thread(runner):
    errors: list[BaseException] = []

    def target():
        try:
            runner.run()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, errors


def test_postgres_views_equal_the_log_and_redelivery_changes_nothing(
        bootstrap, codec, routed, pg_db):
    router, topics = routed
    produce_sample(bootstrap, codec, router, 3000, seed=11)
    settings = _settings_for(pg_db, LVLUP_SINKS__MAX_BATCH="400")
    engine = create_engine(pg_db)
    group = f"pg-{uuid.uuid4().hex[:8]}"
    runner = build_sink(settings, codec, topics, kind="postgres", engine=engine, group=group)
    thread, errors = _run_in_thread(runner)
    try:
        wait_caught_up(engine, group, bootstrap, topics)
    finally:
        runner.stop()
        thread.join(60)
    assert not errors, errors
    log = read_log(bootstrap, codec, topics)
    reference = reference_views(log)
    assert db_views(engine) == reference
    assert runner.stats.batches >= 3

    # (a) the same records delivered again — as one batch, then cut differently — change
    # nothing, not even the summed views (the offsets stored with the rows fence them)
    writer = PostgresWriter(engine, build_projections())
    whole = Batch()
    for rec in log:
        whole.add(rec)
    writer.write(group, whole)
    for start in range(0, len(log), 777):
        part = Batch()
        for rec in log[start:start + 777]:
            part.add(rec)
        writer.write(group, part)
    assert db_views(engine) == reference
    engine.dispose()


def _sink_process(kind: str, group: str, topics: list[str], env: dict[str, str],
                  log_path: Path, kill_after: int = 0) -> subprocess.Popen:
    full = {**os.environ, **env, "SINK_KIND": kind, "SINK_GROUP": group,
            "SINK_TOPICS": ",".join(topics), "SINK_KILL_AFTER": str(kill_after),
            "LVLUP_SINKS__MAX_BATCH": "300"}
    return subprocess.Popen([sys.executable, "-m", "tests.integration.apps.sink_app"], cwd=ROOT,
                            env=full, stdout=log_path.open("ab"), stderr=subprocess.STDOUT)


def _stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def test_postgres_sink_sigkilled_between_write_and_commit(bootstrap, codec, routed, pg_db,
                                                          tmp_path):
    router, topics = routed
    produce_sample(bootstrap, codec, router, 3000, seed=12)
    group = f"pgk-{uuid.uuid4().hex[:8]}"
    env = {"LVLUP_POSTGRES__URL": pg_db}
    log_path = tmp_path / "sink.log"
    crashing = _sink_process("postgres", group, topics, env, log_path, kill_after=3)
    assert crashing.wait(120) == -signal.SIGKILL, log_path.read_text()[-2000:]
    engine = create_engine(pg_db)
    resumed = _sink_process("postgres", group, topics, env, log_path)
    try:
        wait_caught_up(engine, group, bootstrap, topics)
    finally:
        _stop(resumed)
    assert db_views(engine) == reference_views(read_log(bootstrap, codec, topics))
    engine.dispose()


def test_clickhouse_sink_sigkilled_between_write_and_commit(bootstrap, codec, routed, tmp_path):
    router, topics = routed
    records = produce_sample(bootstrap, codec, router, 3000, seed=13)
    group = f"chk-{uuid.uuid4().hex[:8]}"
    chdb_path = tmp_path / "ch"
    env = {"LVLUP_CLICKHOUSE__CHDB_PATH": str(chdb_path)}
    client = ChdbClient(chdb_path)
    migrate_up(client, "lvlup")
    client.close()
    log_path = tmp_path / "sink.log"
    crashing = _sink_process("clickhouse", group, topics, env, log_path, kill_after=3)
    assert crashing.wait(120) == -signal.SIGKILL, log_path.read_text()[-2000:]
    resumed = _sink_process("clickhouse", group, topics, env, log_path)
    try:
        committed_caught_up(group, bootstrap, topics)
    finally:
        _stop(resumed)
    assert resumed.returncode == 0, log_path.read_text()[-2000:]
    client = ChdbClient(chdb_path)
    try:
        final = client.query("SELECT count(), uniqExact(event_id) FROM lvlup.events FINAL").rows[0]
        assert (int(final[0]), int(final[1])) == (len(records), len(records))
        positions = set(client.query(
            "SELECT topic, partition, offset FROM lvlup.events FINAL").rows)
        log = read_log(bootstrap, codec, topics)
        assert positions == {(r.topic, r.partition, r.offset) for r in log}

        # a redelivered batch cut differently adds raw rows that FINAL collapses; the same
        # batch again, with its deterministic token, is not stored a second time at all
        # (merges stopped: a background merge would collapse raw rows between the counts)
        client.command("SYSTEM STOP MERGES lvlup.events")
        writer = ClickHouseWriter(client, "lvlup")
        batch = Batch()
        for rec in log[:500]:
            batch.add(rec)
        writer.write(group, batch)
        raw = int(client.query("SELECT count() FROM lvlup.events").scalar())
        writer.write(group, batch)
        assert int(client.query("SELECT count() FROM lvlup.events").scalar()) == raw
        assert int(client.query("SELECT count() FROM lvlup.events FINAL").scalar()) == len(records)
    finally:
        client.close()


def test_postgres_down_for_20_seconds_mid_stream(stack, bootstrap, codec, routed, pg_db):
    if not stack.postgres.embedded:
        pytest.skip("stopping Postgres needs the embedded server")
    router, topics = routed
    produce_sample(bootstrap, codec, router, 1500, seed=14)
    settings = _settings_for(pg_db, LVLUP_SINKS__MAX_BATCH="300", LVLUP_SINKS__RETRY_MAX_S="2")
    engine = create_engine(pg_db, pool_pre_ping=True)
    group = f"pgd-{uuid.uuid4().hex[:8]}"
    runner = build_sink(settings, codec, topics, kind="postgres", engine=engine, group=group)
    thread, errors = _run_in_thread(runner)
    server = EmbeddedPostgres(stack)
    try:
        wait_caught_up(engine, group, bootstrap, topics)
        server.stop()
        stopped_at = time.monotonic()
        produce_sample(bootstrap, codec, router, 1500, seed=15, start_ms=1_763_856_000_000)
        time.sleep(max(0.0, 20 - (time.monotonic() - stopped_at)))
        assert thread.is_alive(), errors
        server.start()
        wait_caught_up(engine, group, bootstrap, topics, timeout_s=180)
    finally:
        server.start()
        runner.stop()
        thread.join(60)
    assert not errors, errors
    assert runner.stats.write_retries > 0, "the outage was not noticed"
    assert db_views(engine) == reference_views(read_log(bootstrap, codec, topics))
    engine.dispose()
