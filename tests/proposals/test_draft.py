"""Autonomous drafts: the model's answer becomes a scratch proposal whose smoke test runs."""

from __future__ import annotations

import asyncio
from typing import Any

from agents.custody.sandbox import SandboxLimits, run_python
from agents.proposals.draft import draft_proposal, extract_code, run_drafts
from agents.proposals.experiment import run_tests, summarize
from agents.proposals.files import proposal_files
from schemas.codec import load_codec

ANSWER = "Sure!\n```python\ndef median(xs):\n    s = sorted(xs)\n    return s[len(s) // 2]\n```\n"


async def _infer(agent_id: str, prompt: str, max_tokens: int, seed: int) -> str:
    return ANSWER


def test_extract_code_takes_the_fenced_block_or_everything():
    assert extract_code(ANSWER).startswith("def median(xs):")
    assert extract_code("x = 1") == "x = 1\n"
    assert extract_code("```\ny = 2\n") == "y = 2\n"  # unterminated fence


def test_a_draft_is_a_valid_scratch_proposal_whose_smoke_test_passes():
    rec = asyncio.run(draft_proposal("sandbox-1", "sandbox", 42, _infer, now_ms=1))
    load_codec().encode("proposal_submitted", rec)
    assert (rec["proposal_id"], rec["target_repo"]) == ("auto-sandbox_1-42", "scratch")
    files = proposal_files(rec)
    assert rec["file_path"] in files and files[rec["file_path"]].startswith("def median")
    limits = SandboxLimits(cpu_seconds=2, wall_seconds=10.0)
    summary = summarize(run_tests(files, lambda s, lim: run_python(s, limits=lim), limits))
    assert (summary.status, summary.tests_run) == ("passed", 1), summary.output_excerpt
    again = asyncio.run(draft_proposal("sandbox-1", "sandbox", 42, _infer, now_ms=2))
    assert again["event_id"] == rec["event_id"]


def test_run_drafts_drafts_each_agent_once_per_slot_and_survives_a_failed_model():
    emitted: list[dict[str, Any]] = []
    stop = asyncio.Event()

    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int) -> str:
        if agent_id == "broken":
            raise TimeoutError("no inference worker")
        return "" if agent_id == "mute" else ANSWER

    async def emit(rtype: str, rec: dict[str, Any]) -> None:
        emitted.append(rec)
        if len(emitted) == 2:
            stop.set()

    asyncio.run(run_drafts({"a": "imperium", "broken": "sandbox", "c": "guardian",
                            "mute": "conquest"}, 3600,
                           infer, emit, stop, now_ms=lambda: 7_200_000))
    assert [r["proposal_id"] for r in emitted] == ["auto-a-2", "auto-c-2"]
