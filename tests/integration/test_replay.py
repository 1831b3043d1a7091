"""Replay and audit on the real stack (Kafka, Postgres, chdb), on per-test topics:

- a realistic mixed stream (the sample mix, custody runs graded by the custody code, recorded
  inference I/O) goes through both live sinks; ``rebuild`` certifies both stores equal;
- one corrupted live row per store is named, view and key, by ``rebuild`` (library and CLI,
  exit codes 0 / 1 / 2);
- ``diff`` of a window under unchanged code finds nothing; under a changed custody scorer it
  shows the verdict flips of the window's runs only; ``--reinfer``'s comparison counts the
  answers that changed;
- the audit trail lists an entity's records in order with their positions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from agents.custody.items import Category, Item, ScoreResult
from agents.custody.runs import RunContext, item_result_record, summarize_run, verdict_for
from inference.recorded import load_recorded
from inference.types import InferenceResponse
from infra.bench.sample import SampleStream
from schemas.codec import load_codec
from sinks.app import CLICKHOUSE_GROUP, POSTGRES_GROUP, build_sink
from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up
from sinks.replay.certificate import rebuild
from sinks.replay.diff import custody_rescorer, render_markdown, replay_diff
from sinks.replay.engine import ReplayCode, ReplayRequest
from sinks.replay.reinfer import read_requests, run_reinfer
from streams.producer import EventProducer
from streams.settings import Settings
from streams.wiring import wiring_for

from .sink_support import PrefixRouter, committed_caught_up, wait_caught_up

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORD_TYPES = ("agent_command", "learning_event", "token_usage", "inference_response",
                "custody_item_result", "guardian_finding", "agent_metrics", "error_event",
                "internet_learning_result", "custody_run_result", "inference_request")


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


def custody_runs(tag: str, runs: int, at_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """``runs`` custody runs of 10 trials graded by the custody code: run ``i`` passes
    ``i % 11`` items, so the verdicts span failed, inconclusive and passed."""
    out: list[tuple[str, dict[str, Any]]] = []
    agents = [("guardian-1", "guardian"), ("sandbox-2", "sandbox"), ("imperium-1", "imperium")]
    for i in range(runs):
        agent_id, agent_type = agents[i % len(agents)]
        ctx = RunContext(run_id=f"run-{tag}-{i:02d}", agent_id=agent_id, agent_type=agent_type,
                         level=3, seed=1000 + i)
        items = [Item(f"cq-{j}", Category.CODE_QUALITY, ctx.tier, "prompt", "exact")
                 for j in range(10)]
        passed = i % 11
        records = [item_result_record(ctx, item, 0, ScoreResult(float(j < passed), j < passed,
                                                                 "", "exact/1"),
                                      duration_ms=5, occurred_at_ms=at_ms + i)
                   for j, item in enumerate(items)]
        out += [("custody_item_result", r) for r in records]
        out += [("custody_run_result", s.record)
                for s in summarize_run(ctx, records, occurred_at_ms=at_ms + i)]
    return out


def inference_io(tag: str, at_ms: int) -> list[tuple[str, dict[str, Any]]]:
    """Four requests; three with a recorded response (``hello``), the last without one."""
    templates = SampleStream().templates
    out: list[tuple[str, dict[str, Any]]] = []
    for i in range(4):
        request_id = f"req-{tag}-{i}"
        out.append(("inference_request", {**templates["inference_request"],
                                          "event_id": str(uuid.uuid4()), "occurred_at": at_ms,
                                          "request_id": request_id, "json_schema": None}))
        if i < 3:
            out.append(("inference_response", {**templates["inference_response"],
                                               "event_id": str(uuid.uuid4()),
                                               "occurred_at": at_ms + 1, "text": "hello",
                                               "json": None, "request_id": request_id}))
    return out


@dataclass
class Live:
    """The live side of a replay test: settings, router, topics, stores and the window."""

    settings: Settings
    router: PrefixRouter
    topics: list[str]
    engine: Engine
    clickhouse: ChdbClient
    chdb_path: Path
    suffix: str
    t0: int = 0
    t1: int = 0

    def request(self, **changes: Any) -> ReplayRequest:
        return ReplayRequest(topic_prefix=self.router.prefix,
                             postgres_group=POSTGRES_GROUP + self.suffix,
                             clickhouse_group=CLICKHOUSE_GROUP + self.suffix, **changes)


def _produce(bootstrap: str, router: PrefixRouter,
             records: list[tuple[str, dict[str, Any]]]) -> None:
    producer = EventProducer(bootstrap, load_codec(), router, name="test-replay")
    for record_type, record in records:
        producer.emit(record_type, record)
    producer.close()


@pytest.fixture
def live(bootstrap, pg_db, tmp_path) -> Iterator[Live]:
    """Both live sinks built from two phases of a mixed stream; ``t0``..``t1`` (Kafka time)
    holds the second phase only."""
    from streams.kafka_admin import delete_topics

    settings, codec = _settings(pg_db), load_codec()
    router = PrefixRouter(f"test.{uuid.uuid4().hex[:8]}.")
    topics = router.topics(bootstrap, RECORD_TYPES)
    start = SampleStream.start_ms
    _produce(bootstrap, router, [*SampleStream(seed=31).records(1500),
                                 *custody_runs("a", 12, start + 10_000)])
    time.sleep(0.05)
    t0 = int(time.time() * 1000)
    time.sleep(0.05)
    later = start + 3_600_000
    _produce(bootstrap, router, [*custody_runs("b", 12, later),
                                 *list(SampleStream(seed=32, start_ms=later).records(300))[8:],
                                 *inference_io("b", later)])
    time.sleep(0.05)
    t1 = int(time.time() * 1000)
    engine = create_engine(pg_db)
    chdb_path = tmp_path / "ch"
    client = ChdbClient(chdb_path)
    migrate_up(client, settings.clickhouse.database)
    suffix = f".test.{uuid.uuid4().hex[:6]}"
    runners = [build_sink(settings, codec, topics, kind="postgres", engine=engine,
                          group=POSTGRES_GROUP + suffix),
               build_sink(settings, codec, topics, kind="clickhouse", clickhouse=client,
                          group=CLICKHOUSE_GROUP + suffix)]
    threads = [threading.Thread(target=r.run, daemon=True) for r in runners]
    for thread in threads:
        thread.start()
    try:
        wait_caught_up(engine, POSTGRES_GROUP + suffix, bootstrap, topics)
        committed_caught_up(CLICKHOUSE_GROUP + suffix, bootstrap, topics)
    finally:
        for runner in runners:
            runner.stop()
        for thread in threads:
            thread.join(60)
    yield Live(settings, router, topics, engine, client, chdb_path, suffix, t0, t1)
    client.close()
    engine.dispose()
    delete_topics(bootstrap, topics)


def _lvlup(live: Live, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LVLUP_POSTGRES__URL": live.settings.postgres.sqlalchemy_url(),
           "LVLUP_CLICKHOUSE__CHDB_PATH": str(live.chdb_path), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "infra.cli", "replay", *args,
                           "--topic-prefix", live.router.prefix, "--group-suffix", live.suffix],
                          env=env, capture_output=True, text=True, timeout=300, check=False,
                          cwd=ROOT)


def test_rebuild_certifies_both_stores_and_names_corrupted_rows(live, tmp_path):
    cert = rebuild(live.settings, live.request(), engine=live.engine,
                   clickhouse=live.clickhouse)
    assert cert.equal, cert.mismatches
    views = cert.views
    assert views["postgres.learning_logs"]["rows_live"] >= 600
    assert views["postgres.custody_runs"]["rows_live"] == 24
    assert views["clickhouse.events"]["rows_live"] == cert.records["read"] >= 1800
    assert {"clickhouse.custody_pass_rate_day", "clickhouse.learning_by_agent_topic_day",
            "clickhouse.tokens_by_model_day"} <= set(views)
    assert set(cert.stores) == {"postgres", "clickhouse"}
    learning = live.router.prefix + "lvlup.learning.events"
    assert cert.stores["clickhouse"]["window"][learning]  # per-partition offset ranges
    assert cert.stores["postgres"]["schema"]["revision_live"] == (
        cert.stores["postgres"]["schema"]["revision_shadow"])
    assert len(cert.schema_fingerprints) > 20 and not cert.unprovable

    with live.engine.begin() as conn:
        victim, insight = conn.execute(text(
            "SELECT event_id, insight FROM learning_logs ORDER BY event_id LIMIT 1")).one()
        conn.execute(text("UPDATE learning_logs SET insight = 'tampered' WHERE event_id = :e"),
                     {"e": victim})
    row = live.clickhouse.query(
        "SELECT event_id, topic, partition, offset FROM lvlup.events "
        "WHERE record_type = 'guardian_finding' ORDER BY event_id LIMIT 1").dicts()[0]
    live.clickhouse.command(
        "ALTER TABLE lvlup.events UPDATE payload = replace(payload, '\"severity\":\"', "
        f"'\"severity\":\"x') WHERE event_id = '{row['event_id']}' "
        "SETTINGS mutations_sync = 1")
    bad = rebuild(live.settings, live.request(), engine=live.engine, clickhouse=live.clickhouse)
    assert not bad.equal
    event_key = f"{row['topic']}:{row['partition']}:{row['offset']}"
    assert bad.mismatches["postgres.learning_logs"] == [victim]
    assert bad.mismatches["clickhouse.events"] == [event_key]
    assert set(bad.mismatches) == {"postgres.learning_logs", "clickhouse.events",
                                   "clickhouse.guardian_findings_day"}

    # the CLI: chdb is held by this process → one line and exit 2; Postgres only → exit 1
    locked = _lvlup(live, "rebuild", "--certificate", str(tmp_path / "c0.json"))
    assert locked.returncode == 2 and "--views 'postgres.*'" in locked.stderr
    proc = _lvlup(live, "rebuild", "--views", "postgres.*", "--certificate",
                  str(tmp_path / "c1.json"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert f"mismatch in postgres.learning_logs: {victim}" in proc.stderr
    written = json.loads((tmp_path / "c1.json").read_text())
    assert written["verdict"] == "different" and set(written["stores"]) == {"postgres"}

    with live.engine.begin() as conn:
        conn.execute(text("UPDATE learning_logs SET insight = :i WHERE event_id = :e"),
                     {"i": insight, "e": victim})
    proc = _lvlup(live, "rebuild", "--views", "learning_logs,custody_runs", "--certificate",
                  str(tmp_path / "c2.json"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "verdict: equal" in proc.stdout


def test_postgres_writes_run_behind_the_reader(live, monkeypatch):
    """While the first Postgres write is held, the reader goes on: ClickHouse receives the
    next chunks meanwhile (one thread doing both would wait out the hold first), and the
    rebuild still certifies equal."""
    import sinks.replay.engine as replay_engine
    from sinks.clickhouse.writer import ClickHouseWriter
    from sinks.postgres.writer import PostgresWriter

    three_chunks = threading.Event()
    seen: dict[str, Any] = {"ch_writes": 0, "ahead": None}

    class CountingClickHouse(ClickHouseWriter):
        def write(self, group, batch):  # type: ignore[no-untyped-def]
            super().write(group, batch)
            seen["ch_writes"] += 1
            if seen["ch_writes"] >= 3:
                three_chunks.set()

    class HeldFirst(PostgresWriter):
        def write(self, group, batch):  # type: ignore[no-untyped-def]
            if seen["ahead"] is None:
                seen["ahead"] = three_chunks.wait(timeout=10)
                seen["thread"] = threading.current_thread().name
            super().write(group, batch)

    monkeypatch.setattr(replay_engine, "ClickHouseWriter", CountingClickHouse)
    monkeypatch.setattr(replay_engine, "PostgresWriter", HeldFirst)
    small = live.settings.model_copy(update={"sinks": live.settings.sinks.model_copy(
        update={"max_batch": 200})})
    cert = rebuild(small, live.request(), engine=live.engine, clickhouse=live.clickhouse)
    assert seen["ahead"] is True, "ClickHouse got no chunk while Postgres held the first"
    assert seen["thread"].startswith("replay-postgres")
    assert cert.equal, cert.mismatches


def test_a_failed_postgres_write_fails_the_rebuild_and_leaves_no_shadow(live, monkeypatch):
    """Postgres writes run on their own thread behind the reader: the third chunk's failure
    is raised by the rebuild (after ClickHouse's comparison stopped), and every shadow and
    copy database of both stores is dropped."""
    import sinks.replay.engine as replay_engine
    from sinks.errors import QueryError
    from sinks.postgres.writer import PostgresWriter

    class FailingThird(PostgresWriter):
        calls = 0

        def write(self, group, batch):  # type: ignore[no-untyped-def]
            FailingThird.calls += 1
            if FailingThird.calls == 3:
                raise QueryError("postgres rejected a batch: injected")
            super().write(group, batch)

    monkeypatch.setattr(replay_engine, "PostgresWriter", FailingThird)
    small = live.settings.model_copy(update={"sinks": live.settings.sinks.model_copy(
        update={"max_batch": 200})})
    with pytest.raises(QueryError, match="injected"):
        rebuild(small, live.request(), engine=live.engine, clickhouse=live.clickhouse)
    assert FailingThird.calls >= 3
    with live.engine.connect() as conn:
        left = conn.execute(text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                            {"p": f"{live.engine.url.database}_shadow_%"}).all()
    assert left == []
    names = [r[0] for r in live.clickhouse.query("SELECT name FROM system.databases").rows]
    assert not [n for n in names if "_shadow_" in n or "_live_" in n]


def test_rebuild_after_retention_proves_what_is_retained(live):
    """Records deleted from the log start (as retention does) are out of scope; a state view
    fed by a truncated topic is listed as unprovable, not as a mismatch."""
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient

    bootstrap = live.settings.kafka.bootstrap()
    errors, learning = (live.router.prefix + t for t in ("lvlup.errors", "lvlup.learning.events"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(errors, p, 5) for p in range(3)]
                                   + [TopicPartition(learning, 0, 20)])
    for future in futures.values():
        future.result(timeout=30)
    cert = rebuild(live.settings, live.request(), engine=live.engine,
                   clickhouse=live.clickhouse)
    assert cert.equal, cert.mismatches
    assert set(cert.unprovable) == {"postgres.error_learning"}
    assert "retention" in cert.unprovable["postgres.error_learning"]
    assert cert.views["postgres.learning_logs"]["skipped"] == 20  # live rows the log lost
    assert cert.stores["clickhouse"]["outside"] == 3 * 5 + 20
    assert cert.stores["clickhouse"]["window"][learning]["0"].startswith("20-")


def test_diff_shows_the_verdict_flips_of_a_scoring_change(live):
    window = live.request(since_ms=live.t0, until_ms=live.t1)
    same = replay_diff(live.settings, window, engine=live.engine, clickhouse=live.clickhouse,
                       code=ReplayCode(rescore=custody_rescorer(verdict_for)))
    assert same.changes == 0 and same.verdict_flips == [], same.views
    assert same.views["postgres.custody_runs"]["rows_live"] == 12  # the window's runs only
    assert same.views["postgres.custody_runs"]["skipped"] == 24  # phase one's, both sides

    def lenient(passed: int, total: int) -> tuple[str, float, float]:
        return verdict_for(passed, total, threshold=0.3)

    changed = replay_diff(live.settings, window, engine=live.engine,
                          clickhouse=live.clickhouse,
                          code=ReplayCode(rescore=custody_rescorer(lenient)))
    expected = {f"run-b-{i:02d}" for i in range(12)
                if verdict_for(i % 11, 10)[0] != lenient(i % 11, 10)[0]}
    assert expected and {f["run_id"] for f in changed.verdict_flips} == expected
    assert all(f["live"] != f["shadow"] for f in changed.verdict_flips)
    views = changed.views
    assert views["postgres.custody_runs"]["changed"] == len(expected)
    assert views["clickhouse.events"]["changed"] == len(expected)
    assert views["postgres.learning_logs"]["changed"] == 0
    flipped_agents = {f["agent_id"] for f in changed.verdict_flips}
    assert flipped_agents <= set(changed.agents)
    some = changed.agents[next(iter(flipped_agents))]["postgres.custody_runs"]
    assert some["changed"] >= 1
    markdown = render_markdown(changed)
    assert f"## Custody verdict flips ({len(expected)})" in markdown
    assert "run-b-" in markdown and "run-a-" not in markdown

    # restricted to Postgres views by pattern; the Kafka window equals the one above
    pg_only = replay_diff(live.settings, replace(window, views=("postgres.custody_*",)),
                          engine=live.engine, code=ReplayCode(rescore=custody_rescorer(lenient)))
    assert set(pg_only.views) == {"postgres.custody_runs"}
    assert len(pg_only.verdict_flips) == len(expected)


def test_reinfer_counts_answers_that_changed(live):
    wiring = wiring_for(live.settings)
    bootstrap, codec = wiring.bootstrap, wiring.codec
    requests = read_requests(wiring, since_ms=live.t0, until_ms=live.t1,
                             topic_prefix=live.router.prefix)
    recorded = load_recorded(bootstrap, codec,
                             live.router.prefix + "lvlup.inference.responses")
    assert sorted(r["request_id"] for r in requests) == [f"req-b-{i}" for i in range(4)]
    assert {f"req-b-{i}" for i in range(3)} <= set(recorded)  # the sample's responses too

    async def answer(request: dict[str, Any]) -> InferenceResponse:
        text_ = "hello" if request["request_id"].endswith("-0") else "goodbye"
        return InferenceResponse(request["request_id"], text_, None, "stop", 5, 1, 10.0, None,
                                 "local", 0.0, False)

    report = run_reinfer(requests, recorded, answer, limit=10)
    assert (report.requests, report.compared, report.differing, report.not_recorded) == (
        4, 3, 2, 1)
    assert report.examples[0]["fields"] == {"text": ["hello", "goodbye"]}


def test_audit_trail_lists_an_entitys_records_in_order(tmp_path, monkeypatch):
    from sinks.audit import audit_trail
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
