"""The proposals pipeline on the real stack (issue #8): Kafka, the sandbox, guardian's scanners
and the Postgres sink (in-process, per-test topics and database).

An ineligible agent's proposal is rejected with the gate's reason; an eligible agent's proposal
with a planted ``subprocess.run(..., shell=True)`` and a hard-coded AWS key gets those findings,
its tests run in the sandbox (the network call fails, the infinite loop is killed), and the
policy declines it; a clean proposal waits for the operator, whose decision lands in Postgres
with a notification. A failed build yields a conquest recommendation with its pattern.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from agents.conquest.worker import ConquestWorker
from agents.custody.sandbox import SandboxLimits
from agents.proposals.pipeline import ProposalPolicy
from agents.proposals.scratch import ScratchRepo
from agents.proposals.worker import ProposalsWorker
from infra.cli.proposalscmd import decide, digest, lookup_agent
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from sinks.app import build_sink
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer
from streams.settings import Settings
from tests.proposals.support import (
    CLEAN,
    CLEAN_TESTS,
    PLANTED,
    PLANTED_TESTS,
    proposal,
    run_result,
)

from .sink_support import PrefixRouter, read_log, wait_caught_up

pytestmark = pytest.mark.integration

RECORD_TYPES = ["proposal_submitted", "proposal_gated", "proposal_scanned",
                "proposal_experimented", "proposal_decided", "guardian_finding",
                "experiment_requested", "experiment_result", "notification", "error_event",
                "custody_run_result", "build_event", "conquest_recommendation",
                "agent_level_changed"]
HOUR = 3_600_000



@pytest.fixture
def routed(bootstrap):
    router = PrefixRouter(f"test.prop{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, RECORD_TYPES)
    yield router, topics
    delete_topics(bootstrap, topics)


def _settings_for(url: str) -> Settings:
    old = os.environ.get("LVLUP_POSTGRES__URL")
    os.environ["LVLUP_POSTGRES__URL"] = url
    try:
        return Settings()
    finally:
        if old is None:
            os.environ.pop("LVLUP_POSTGRES__URL")
        else:
            os.environ["LVLUP_POSTGRES__URL"] = old


async def _until(what: str, check: Callable[[], bool], tasks: list[asyncio.Task[None]],
                 timeout_s: float = 300) -> None:
    """Until ``check()``; fails at once if a worker task ended (it raised or stopped)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        for task in tasks:
            if task.done():
                task.result()
                raise AssertionError(f"a worker stopped while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def _row(engine: Engine, sql: str, **params: Any) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(text(sql), params).mappings().first()
    return None if row is None else dict(row)


def _rows(engine: Engine, sql: str, **params: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text(sql), params).mappings()]


def test_proposals_end_to_end(stack, bootstrap, routed, pg_db, tmp_path):
    router, topics = routed
    codec, catalog = load_codec(), load_catalog()
    engine = create_engine(pg_db)
    sink = build_sink(_settings_for(pg_db), codec, topics, kind="postgres", engine=engine,
                      group=f"pgp-{uuid.uuid4().hex[:8]}")
    sink_errors: list[BaseException] = []

    def run_sink() -> None:
        try:
            sink.run()
        except BaseException as exc:  # surfaced below
            sink_errors.append(exc)

    sink_thread = threading.Thread(target=run_sink, daemon=True)
    sink_thread.start()
    producer = EventProducer(bootstrap, codec, router, name="test")
    now = int(time.time() * 1000)
    # custody history: good-1 passed three runs in each category the custody-v1 gate requires
    # (code_quality, security_awareness); weak-1 only code_quality (security: no evidence)
    for i in range(3):
        for category in ("code_quality", "security_awareness"):
            producer.emit_sync("custody_run_result",
                               run_result("good-1", occurred_at=now - (i + 1) * HOUR,
                                          category=category))
    producer.emit_sync("custody_run_result", run_result("weak-1", occurred_at=now - HOUR))
    names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
    policy = ProposalPolicy(limits=SandboxLimits(cpu_seconds=2, wall_seconds=10.0))
    scratch = ScratchRepo(tmp_path / "scratch")
    proposals = ProposalsWorker(bootstrap, codec, catalog, producer, policy=policy,
                                group=f"prop-{uuid.uuid4().hex[:8]}", topics=names,
                                scratch=scratch)
    conquest = ConquestWorker(bootstrap, codec, catalog, producer,
                              group=f"conq-{uuid.uuid4().hex[:8]}", topics=names)

    weak = proposal("weak-1", {"tool/clean.py": CLEAN}, occurred_at=now, title="weak")
    planted = proposal("good-1", {"tool/helper.py": PLANTED,
                                  "tests/test_helper.py": PLANTED_TESTS},
                       occurred_at=now, title="planted")
    clean = proposal("good-1", {"tool/clean.py": CLEAN, "tests/test_clean.py": CLEAN_TESTS},
                     occurred_at=now, title="clean")
    build = {"build_id": f"b-{uuid.uuid4().hex[:6]}", "agent_id": None, "component": "lvlup",
             "version": "0.1.0", "status": "failed", "duration_ms": 61_000, "artifact": None,
             "sha256": None,
             "message": "collecting ...\nE   ModuleNotFoundError: No module named 'chdbx'\n"}

    async def scenario() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(proposals.run(stop)),
                 asyncio.create_task(conquest.run(stop))]
        try:
            for rec in (weak, planted, clean):
                await producer.emit_async("proposal_submitted", rec)
            await producer.emit_async("build_event", build)
            await producer.emit_async("agent_level_changed", {
                "agent_id": "good-1", "agent_type": "sandbox", "old_level": 4, "new_level": 5,
                "old_prestige": 0, "new_prestige": 0, "xp": 2150, "reason": "custody_passed",
                "run_id": None})
            await _until("three proposals processed", lambda: len(proposals.results) == 3, tasks)
            await _until("the clean proposal in Postgres", lambda: _row(
                engine, "SELECT 1 AS x FROM proposals WHERE proposal_id = :p",
                p=clean["proposal_id"]) is not None, tasks)
            agent = lookup_agent(engine, clean["proposal_id"])  # as the CLI does
            await asyncio.to_thread(decide, producer, clean["proposal_id"], agent,
                                    approve=True, reason="tests pass, no findings", by="alice")
            await _until("three decisions notified", lambda: proposals.notified == 3, tasks)
            await _until("a recommendation", lambda: len(conquest.recommended) == 1, tasks)
            await _until("the approved proposal committed to the scratch repository",
                         lambda: clean["proposal_id"] in proposals.commits, tasks)
        finally:
            stop.set()
            done = await asyncio.gather(*tasks, return_exceptions=True)
        assert not [d for d in done if isinstance(d, BaseException)], done

    try:
        asyncio.run(scenario())
        producer.flush()
        wait_caught_up(engine, sink.config.group, bootstrap, topics)
    finally:
        producer.close()
        sink.stop()
        sink_thread.join(60)
    assert not sink_errors, sink_errors
    stages = {r.proposal_id: r.stage for r in proposals.results}
    assert stages == {weak["proposal_id"]: "gated_out", planted["proposal_id"]: "declined",
                      clean["proposal_id"]: "awaiting_decision"}

    # 1. the ineligible agent: gated out with the gate's reason, citing its run's position
    row = _row(engine, "SELECT * FROM proposals WHERE proposal_id = :p", p=weak["proposal_id"])
    assert row is not None
    assert (row["status"], row["decided_by"]) == ("declined", "policy")
    assert "custody gate: not eligible" in row["decision_reason"]
    assert "security_awareness@basic continue" in row["decision_reason"]
    gated = _row(engine, "SELECT detail FROM proposal_history WHERE proposal_id = :p"
                 " AND record_type = 'proposal_gated'", p=weak["proposal_id"])
    assert gated is not None
    assert "security_awareness@basic continue: 0/0 trials" in gated["detail"]["reasons"][0]
    assert gated["detail"]["policy_version"].startswith("custody-v1@")
    (cited,) = gated["detail"]["evidence"]  # weak-1's code_quality run, by log position
    assert cited["topic"] == names["custody_run_result"] and cited["offset"] >= 0
    assert cited["category"] == "code_quality"

    # 2. the planted proposal: shell=True and the secret found, with CWE, file and line
    findings = _rows(engine, "SELECT * FROM guardian_suggestions WHERE proposal_id = :p",
                     p=planted["proposal_id"])
    shell = [f for f in findings if f["rule_id"] == "B602"]
    assert shell and shell[0]["cwe"] == "CWE-78" and shell[0]["severity"] == "high"
    assert shell[0]["file_path"] == "tool/helper.py" and shell[0]["line"] == 8
    secret = [f for f in findings if f["tool"] == "detect-secrets"]
    assert secret and secret[0]["cwe"] == "CWE-798" and secret[0]["line"] == 4
    assert all("wJalrXUtnFEMI" not in (f["message"] or "") for f in findings)

    # 3. its tests in the sandbox: one passed, the network call failed, the loop was killed
    exp = _row(engine, "SELECT * FROM experiments WHERE proposal_id = :p",
               p=planted["proposal_id"])
    assert exp is not None
    assert (exp["status"], exp["passed"], exp["tests_run"], exp["tests_failed"]) == (
        "timeout", False, 3, 2)
    out = exp["output_excerpt"]
    assert "PASSED tests/test_helper.py::test_add" in out
    assert "FAILED (exit 1) tests/test_helper.py::test_network" in out
    assert "URLError" in out or "unreachable" in out.lower()
    assert "KILLED (cpu_time) tests/test_helper.py::test_forever" in out or \
        "KILLED (wall_time) tests/test_helper.py::test_forever" in out
    row = _row(engine, "SELECT * FROM proposals WHERE proposal_id = :p",
               p=planted["proposal_id"])
    assert row is not None and (row["status"], row["decided_by"]) == ("declined", "policy")
    assert "B602" in row["decision_reason"]
    history = [r["record_type"] for r in _rows(
        engine, "SELECT record_type FROM proposal_history WHERE proposal_id = :p"
        " ORDER BY occurred_at, record_type", p=planted["proposal_id"])]
    assert set(history) == {"proposal_submitted", "proposal_gated", "proposal_scanned",
                            "proposal_experimented", "proposal_decided"}

    # 4. the operator's decision on the clean proposal, and its notification
    row = _row(engine, "SELECT * FROM proposals WHERE proposal_id = :p", p=clean["proposal_id"])
    assert row is not None
    assert (row["status"], row["decided_by"], row["decision_reason"]) == (
        "approved", "alice", "tests pass, no findings")
    clean_exp = _row(engine, "SELECT status, tests_run FROM experiments WHERE proposal_id = :p",
                     p=clean["proposal_id"])
    assert clean_exp == {"status": "passed", "tests_run": 1}
    notes = _rows(engine, "SELECT * FROM notifications")
    titles = {n["title"] for n in notes}
    assert f"Proposal {clean['proposal_id']} approved by alice" in titles
    assert f"Proposal {weak['proposal_id']} declined by policy" in titles
    urgent = [n for n in notes if n["priority"] == "urgent"]
    assert urgent and planted["proposal_id"] in urgent[0]["title"] and not urgent[0]["read"]

    # the approved proposal is in the scratch repository (and only there)
    assert (tmp_path / "scratch" / "tool" / "clean.py").read_text() == CLEAN
    assert scratch.applied(clean["proposal_id"]) and not scratch.applied(planted["proposal_id"])

    # 5. the failed build: a recommendation with the matched pattern, and a build notification
    recs = [r.record for r in read_log(bootstrap, codec, [names["conquest_recommendation"]])]
    assert len(recs) == 1 and recs[0]["evidence"]["pattern"] == "import_error"
    assert "No module named 'chdbx'" in recs[0]["evidence"]["matched_line"]
    assert any(n["kind"] == "build" and "import_error" in n["title"] for n in notes)
    assert "good-1 leveled up: 4 → 5" in titles

    # the weekly digest counts them from the views
    week = digest(engine, datetime.now(UTC))
    codec.encode("notification", week)
    assert "- proposals: approved: 1, declined: 2" in week["message"]
    assert "high: " in week["message"] and "- experiments: passed: 1, timeout: 1" in \
        week["message"]

    # nothing failed: no error events, no DLQ
    assert read_log(bootstrap, codec, [names["error_event"]]) == []
    engine.dispose()

    # restarted: the state comes from the worker's table plus the backlog produced while it
    # was down; nothing is run again, the new proposal is known at once and then processed
    late = proposal("weak-1", {"tool/late.py": CLEAN}, occurred_at=now, title="late")
    producer = EventProducer(bootstrap, codec, router, name="test")
    restarted = ProposalsWorker(bootstrap, codec, catalog, producer, policy=policy,
                                group=proposals.group, topics=names, scratch=scratch)

    async def restart() -> None:
        await producer.emit_async("proposal_submitted", late)
        stop, ready = asyncio.Event(), asyncio.Event()
        tasks = [asyncio.create_task(restarted.run(stop, ready))]
        try:
            await _until("the restart", ready.is_set, tasks, 60)
            assert restarted.restored_from == "table" and restarted.backlog_read == 1
            assert restarted.is_submitted(late["proposal_id"])
            assert {weak["proposal_id"], planted["proposal_id"], clean["proposal_id"]} <= \
                restarted.done
            assert restarted.decided[clean["proposal_id"]] == "approved"
            assert restarted.submitted[clean["proposal_id"]] == proposals.submitted[
                clean["proposal_id"]]
            await _until("the late proposal", lambda: len(restarted.results) == 1, tasks, 120)
        finally:
            stop.set()
            done = await asyncio.gather(*tasks, return_exceptions=True)
        assert not [d for d in done if isinstance(d, BaseException)], done

    try:
        asyncio.run(restart())
    finally:
        producer.close()
    assert [r.proposal_id for r in restarted.results] == [late["proposal_id"]]
    assert restarted.results[0].stage == "gated_out"
