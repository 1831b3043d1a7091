"""Autonomous drafts: the model's answer becomes a scratch proposal whose smoke test runs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from agents.custody.sandbox import SandboxLimits, run_python
from agents.proposals.compose import take_function
from agents.proposals.draft import draft_proposal, extract_code, run_drafts
from agents.proposals.experiment import run_tests, summarize
from agents.proposals.files import proposal_files
from schemas.codec import load_codec
from streams.settings import ProposalsSettings, Settings

#: the model's continuation of the prefilled header (``prefill_for``): the body, the fence
ANSWER = ("    import re\n"
          "    return re.sub(r'[^a-z0-9]+', '-', title.lower()).strip('-')\n```\nSure!\n")


async def _infer(agent_id: str, prompt: str, max_tokens: int, seed: int, prefill: str, *,
                 stop: Sequence[str]) -> str:
    assert prefill.startswith("```python\ndef ")  # the model writes the body only
    assert list(stop) == ["```"]  # and stops at the block's closing fence
    return ANSWER


def test_extract_code_takes_the_fenced_block_or_everything():
    assert extract_code("Sure!\n```python\nimport re\n```").startswith("import re\n")
    assert extract_code("x = 1") == "x = 1\n"
    assert extract_code("```\ny = 2\n") == "y = 2\n"  # unterminated fence


def test_a_draft_targets_a_helper_whose_tests_were_written_first_and_run_it():
    rec = asyncio.run(draft_proposal("sandbox-1", "sandbox", 42, _infer, now_ms=1))
    load_codec().encode("proposal_submitted", rec)
    assert (rec["proposal_id"], rec["target_repo"]) == ("auto-sandbox_1-42", "scratch")
    assert rec["target"]["kind"] == "helper" and rec["target"]["target_id"] == "helper:slugify"
    files = proposal_files(rec)
    assert rec["file_path"] == "lab/sandbox_1/slugify.py"
    assert files[rec["file_path"]].startswith("def slugify(title: str) -> str:\n    \"\"\"")
    assert "    return re.sub(" in files[rec["file_path"]]
    assert rec["target"]["tests"] == ["tests/test_sandbox_1_slugify.py"]
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=10.0)
    summary = summarize(run_tests(files, lambda s, lim: run_python(s, limits=lim), limits))
    assert (summary.status, summary.tests_run, summary.tests_exercising) == ("passed", 2, 2), \
        summary.output_excerpt
    again = asyncio.run(draft_proposal("sandbox-1", "sandbox", 42, _infer, now_ms=2))
    assert again["event_id"] == rec["event_id"]


def test_an_answer_without_a_body_for_the_function_asked_for_is_no_draft():
    async def other(agent_id: str, prompt: str, max_tokens: int, seed: int,
                    prefill: str, *, stop: Sequence[str]) -> str:  # closes the block at once
        return "```python\ndef median(xs):\n    return sorted(xs)[len(xs) // 2]\n```"

    with pytest.raises(ValueError, match=r"no body for slugify\(\)"):
        asyncio.run(draft_proposal("sandbox-1", "sandbox", 42, other, now_ms=1))
    with pytest.raises(ValueError, match=r"no function slugify\(\)"):
        take_function("```python\ndef median(xs):\n    return xs[0]\n```", "slugify")


def test_the_function_ends_where_the_model_leaves_it():
    """HumanEval's stop rule: the body ends at the first top-level line; then the longest
    parsing prefix — never a character the model did not write."""
    header = 'def f(x: int) -> int:\n    """Double."""\n'
    ran_on = header + "    return 2 * x\nprint(f(2))\nFinding: B602\n  else:\n"
    assert take_function(f"```python\n{ran_on}", "f")[0] == header + "    return 2 * x\n"
    broken = header + "    y = 2 * x\n    return y\n    else:\n        return (\n"
    assert take_function(f"```python\n{broken}```", "f")[0] == (
        header + "    y = 2 * x\n    return y\n")
    with pytest.raises(ValueError, match="no body"):
        take_function(f"```python\n{header}    ...\n```", "f")


def _schedule(**kw: Any) -> ProposalsSettings:
    return ProposalsSettings(**{"draft_interval_s": 3600, "draft_poll_s": 0.001, **kw})


class _Clock:
    """A settable clock (ms since the epoch) for the schedule loop."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_run_drafts_drafts_each_agent_once_per_slot_and_survives_a_failed_model():
    emitted: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int,
                    prefill: str, *, stop: Sequence[str]) -> str:
        if agent_id == "broken":
            raise TimeoutError("no inference worker")
        return "" if agent_id == "mute" else ANSWER

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append(rec)
        if len(emitted) == 2:
            stop.set()

    asyncio.run(run_drafts({"a": "imperium", "broken": "sandbox", "c": "guardian",
                            "mute": "conquest"}, _schedule(draft_attempts=1),
                           infer, emit, stop, now_ms=lambda: 7_200_000))
    assert [r["proposal_id"] for r in emitted] == ["auto-a-2", "auto-c-2"]


def test_a_failed_draft_is_retried_on_the_next_topic_then_the_agent_waits_for_the_next_slot():
    clock, prompts, emitted = _Clock(7_200_000), [], []
    stop = asyncio.Event()

    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int,
                    prefill: str, *, stop: Sequence[str]) -> str:
        prompts.append(prompt)
        clock.ms += 1_000
        if clock.ms >= 10_800_000:  # the next slot: the model answers with code
            return ANSWER
        return "```python\n```"  # an empty block: nothing to propose

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append(rec)
        stop.set()

    async def main() -> None:
        task = asyncio.create_task(run_drafts({"a": "sandbox"}, _schedule(
            draft_attempts=3, draft_retry_s=60), infer, emit, stop, now_ms=clock))
        while len(prompts) < 3:  # attempts 2 and 3 once the retry delay has passed
            clock.ms += 60_000
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        assert len(prompts) == 3 and not emitted  # gave up on slot 2
        clock.ms = 10_800_000  # slot 3
        await asyncio.wait_for(task, 5)

    asyncio.run(main())
    topics = [p.split("def ")[1].split("(")[0] for p in prompts]
    assert len(set(topics[:3])) == 3, topics  # each retry asks for another topic
    assert len(set(topics)) == 4, topics  # the next slot goes on from the next, not the first
    assert [r["proposal_id"] for r in emitted] == ["auto-a-3"]


def test_an_agent_drafts_only_once_it_has_custody_evidence_and_never_twice_a_known_id():
    asked: list[tuple[str, int]] = []
    emitted: list[dict[str, Any]] = []
    stop = asyncio.Event()
    evidence_for = {"b"}

    async def evidence(agent_id: str, at_ms: int) -> bool:
        asked.append((agent_id, at_ms))
        if len(asked) >= 10:
            evidence_for.add("a")  # a's first custody run result arrives
        return agent_id in evidence_for

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append(rec)
        if len(emitted) == 2:
            stop.set()

    asyncio.run(run_drafts({"a": "imperium", "b": "guardian", "c": "sandbox"}, _schedule(),
                           _infer, emit, stop, now_ms=lambda: 7_200_000, evidence=evidence,
                           known=lambda pid: pid == "auto-c-2"))
    assert [r["proposal_id"] for r in emitted] == ["auto-b-2", "auto-a-2"]
    assert ("c", 7_200_000) not in asked  # already on the log: neither asked nor drafted


def test_without_the_custody_wait_or_with_drafting_off():
    emitted: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def never(agent_id: str, at_ms: int) -> bool:
        return False

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append(rec)
        stop.set()

    asyncio.run(run_drafts({"a": "imperium"}, _schedule(draft_after_custody=False), _infer,
                           emit, stop, now_ms=lambda: 7_200_000, evidence=never))
    assert [r["proposal_id"] for r in emitted] == ["auto-a-2"]

    async def off() -> None:  # drafting off: nothing drafted, the task lasts until stopped
        stop_off = asyncio.Event()
        task = asyncio.create_task(run_drafts(
            {"a": "imperium"}, _schedule(draft_interval_s=0, draft_after_custody=False),
            _infer, emit, stop_off, now_ms=lambda: 7_200_000))
        await asyncio.sleep(0.05)
        assert not task.done()
        stop_off.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(off())
    assert len(emitted) == 1


def test_draft_interval_and_friends_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LVLUP_PROPOSALS__DRAFT_INTERVAL_S", "120")
    monkeypatch.setenv("LVLUP_PROPOSALS__DRAFT_AFTER_CUSTODY", "false")
    proposals = Settings().proposals
    assert (proposals.draft_interval_s, proposals.draft_after_custody) == (120, False)


def test_custody_evidence_is_a_run_of_the_agent_inside_the_gate_window():
    from datetime import UTC, datetime

    from agents.custody.gate import PositionedRun, window_runs
    from agents.custody.policy import load_policy
    from agents.proposals.runindex import RunIndex

    from .support import DAY, run_result

    index = RunIndex("127.0.0.1:1", load_codec(), "runs")  # nothing read from Kafka here
    policy = load_policy()  # 14-day window, code_quality among the gate's categories

    def has_run(agent_id: str, at_ms: int) -> bool:  # what ProposalsWorker.has_evidence asks
        return bool(window_runs(agent_id, index.runs(agent_id), at_ms, policy))

    at = 30 * DAY
    index.by_agent["a"].append(PositionedRun(run_result("a", occurred_at=at - 20 * DAY),
                                             "runs", 0, 0))
    assert not has_run("a", at)  # too old for the gate
    late = run_result("a", occurred_at=at + 1)
    index.by_agent["a"].append(PositionedRun(late, "runs", 0, 1))
    assert not has_run("a", at)  # after the proposal: not counted either
    assert has_run("a", at + 1) and not has_run("b", at + 1)
    decoded = {**late, "event_id": "decoded", "agent_id": "b",
               "occurred_at": datetime.fromtimestamp((at - DAY) / 1000, tz=UTC)}
    index.by_agent["b"].append(PositionedRun(decoded, "runs", 0, 2))
    assert has_run("b", at)
