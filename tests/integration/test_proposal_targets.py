"""Targeted drafts through the real pipeline (issue #19 item 7): real Kafka, the proposals
worker with its seeded scratch repository, guardian's scanners and the sandbox.

good-1 (eligible: three passed runs per required category) drafts twice against the targets
the worker picks from its scan of the scratch repository. The first draft fixes B602 in the
planted ``archive()``: the rescan shows it gone and the behaviour tests pass while running the
changed line, so the policy approves it, citing the experiment, and it is committed to the
scratch repository — after which the finding is no longer a target. The second draft "fixes"
``parse_value()`` by returning the text: the finding is gone but the tests fail, so it is
declined with that evidence. The model is replaced by fixed answers (the model's own figures
are in docs/PROPOSALS.md); everything else is real.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agents.custody.sandbox import SandboxLimits
from agents.guardian import scan_files
from agents.proposals.draft import draft_proposal
from agents.proposals.pipeline import ProposalPolicy
from agents.proposals.scratch import ScratchRepo
from agents.proposals.seed import PLANTED_PATH, seed_files
from agents.proposals.targets import finding_targets
from agents.proposals.worker import ProposalsWorker
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer
from tests.proposals.support import run_result

from .sink_support import PrefixRouter, read_log

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORD_TYPES = ["proposal_submitted", "proposal_gated", "proposal_scanned",
                "proposal_experimented", "proposal_decided", "guardian_finding",
                "experiment_requested", "experiment_result", "notification", "error_event",
                "custody_run_result", "agent_level_changed"]
HOUR = 3_600_000
ARCHIVE = "fix:infra/sample/planted/insecure_example.py:archive"
PARSE = "fix:legacy/settings.py:parse_value"
#: the model's continuations of the prefilled headers (the function's body, then the fence)
ANSWERS = {
    "archive": "    return subprocess.run([\"tar\", \"czf\", \"/tmp/backup.tgz\", path], "
               "check=False).returncode\n```",
    "parse_value": "    return text\n```",
}


@pytest.fixture
def routed(bootstrap):
    router = PrefixRouter(f"test.ptgt{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, RECORD_TYPES)
    yield router, topics
    delete_topics(bootstrap, topics)


async def _infer(agent_id: str, prompt: str, max_tokens: int, seed: int, prefill: str, *,
                 stop: Any) -> str:
    assert prefill.startswith("```python\ndef ")
    name = "archive" if "def archive(" in prompt else "parse_value"
    return ANSWERS[name]


async def _until(what: str, check: Any, task: asyncio.Task[None], timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if task.done():
            task.result()
            raise AssertionError(f"the worker stopped while waiting for {what}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.3)


def test_targeted_drafts_through_the_pipeline(stack, bootstrap, routed, tmp_path):
    router, _ = routed
    codec, catalog = load_codec(), load_catalog()
    producer = EventProducer(bootstrap, codec, router, name="test")
    now = int(time.time() * 1000)
    for i in range(3):
        for category in ("code_quality", "security_awareness"):
            producer.emit_sync("custody_run_result", run_result(
                "good-1", occurred_at=now - (i + 1) * HOUR, category=category))
    names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
    scratch = ScratchRepo(tmp_path / "scratch")
    worker = ProposalsWorker(
        bootstrap, codec, catalog, producer,
        policy=ProposalPolicy(limits=SandboxLimits(cpu_seconds=2, wall_seconds=10.0)),
        group=f"ptgt-{uuid.uuid4().hex[:8]}", topics=names, scratch=scratch,
        seed=seed_files((ROOT / PLANTED_PATH).read_text(encoding="utf-8")),
        agent_types={"good-1": "guardian"})  # guardian's role: the findings first
    drafted: list[dict[str, Any]] = []

    async def scenario() -> None:
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(worker.run(stop, ready))
        try:
            await asyncio.wait_for(ready.wait(), 120)
            for slot in (1, 2):  # the second pick sees the first draft claimed on the log
                rec = await draft_proposal("good-1", "sandbox", slot, _infer,
                                           now_ms=int(time.time() * 1000), pick=worker.pick)
                drafted.append(rec)
                await producer.emit_async("proposal_submitted", rec)
                await _until(f"draft {slot} processed", lambda n=slot: len(worker.results) == n,
                             task)
            await _until("both decisions read back", lambda: len(worker.decided) == 2, task)
            await _until("the approved fix committed",
                         lambda: drafted[0]["proposal_id"] in worker.commits, task)
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)

    try:
        asyncio.run(scenario())
    finally:
        producer.close()
    first, second = drafted
    assert (first["target"]["target_id"], second["target"]["target_id"]) == (ARCHIVE, PARSE)
    stages = {r.proposal_id: r.stage for r in worker.results}
    assert stages == {first["proposal_id"]: "approved", second["proposal_id"]: "declined"}

    decided = {r.record["proposal_id"]: r.record
               for r in read_log(bootstrap, codec, [names["proposal_decided"]])}
    approved = decided[first["proposal_id"]]
    assert (approved["status"], approved["decided_by"]) == ("approved", "policy")
    ev = approved["evidence"]
    assert ev["target_met"] is True and ev["scan_passed"] is True
    assert ev["tests_exercising"] == [
        "tests/test_planted_archive.py::test_archive_runs_tar_on_the_path",
        "tests/test_planted_archive.py::test_archive_passes_the_path_as_one_argument"]
    assert "B602, ruff:S602 gone from archive() on rescan" in approved["reason"]

    declined = decided[second["proposal_id"]]
    assert declined["status"] == "declined"
    assert declined["reason"].startswith("experiment failed: 2/2 tests failed")
    assert declined["evidence"]["target_met"] is True  # eval is gone, and so is the behaviour
    assert declined["evidence"]["tests_passed"] == []

    results = {r.record["proposal_id"]: r.record
               for r in read_log(bootstrap, codec, [names["experiment_result"]])}
    assert "2 changed lines run" not in results[second["proposal_id"]]["output_excerpt"]
    assert "PASSED tests/test_planted_archive.py::test_archive_runs_tar_on_the_path" in \
        results[first["proposal_id"]]["output_excerpt"]

    # the fix is in the scratch repository (only there), and its finding is no target any more
    assert '["tar", "czf", "/tmp/backup.tgz", path]' in (scratch.read(PLANTED_PATH) or "")
    assert "shell=True" in (ROOT / PLANTED_PATH).read_text(encoding="utf-8")
    files = scratch.files()
    assert [t.target_id for t in finding_targets(files, scan_files(files))] == [PARSE]
