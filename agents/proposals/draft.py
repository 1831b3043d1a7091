"""Autonomous proposals: an agent drafts a small change with the model and submits it.

Every slot of ``interval_s`` seconds (slot = ⌊epoch seconds / interval_s⌋) each agent asks
the model (temperature 0, a seed from the slot) for one small, self-contained Python helper
on a topic from :data:`TOPICS` (rotating per agent and slot). The answer becomes a proposal
for the scratch repository (``target_repo="scratch"``): a new module
``lab/<agent>/<topic>_<slot>.py`` holding the model's code and a smoke test
``tests/test_<agent>_<topic>_<slot>.py`` that imports it — so the sandbox checks that the
model's code at least loads, and guardian scans it like any other proposal. The draft then
goes through the same lifecycle: the custody gate (agents below the thresholds are rejected),
scan, experiment, decision. Ids derive from agent and slot (``auto-<agent>-<slot>``), so a
restarted or second scheduler re-submits the same proposal, which the worker skips.

:func:`draft_proposal` is pure over its ``infer`` collaborator; :func:`run_drafts` is the
schedule loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog

from agents.proposals.scratch import SCRATCH_REPO

__all__ = ["TOPICS", "draft_proposal", "extract_code", "run_drafts"]

log = structlog.get_logger(__name__)
_NS = uuid.UUID("a3e4f2d1-7c1b-4e55-8f0e-2b9d6c4a1f77")

#: (slug, what the helper should do): small, testable, standard library only
TOPICS: tuple[tuple[str, str], ...] = (
    ("slugify", "turns a title into a lowercase URL slug"),
    ("chunks", "splits a list into chunks of at most n items"),
    ("retry_delays", "returns exponential backoff delays in seconds with a cap"),
    ("median", "returns the median of a list of numbers"),
    ("is_palindrome", "tells whether a string is a palindrome, ignoring case and spaces"),
    ("word_count", "counts the words of a text"),
)
_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.DOTALL)

Infer = Callable[[str, str, int, int], Awaitable[str]]
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def extract_code(answer: str) -> str:
    """The first fenced code block of ``answer``, else the whole answer (stripped, with a
    trailing newline)."""
    m = _FENCE.search(answer)
    code = (m.group(1) if m else answer).strip()
    return code + "\n"


def _diff(files: Mapping[str, str]) -> str:
    out: list[str] = []
    for path, text in files.items():
        lines = text.splitlines()
        out += ["--- /dev/null", f"+++ b/{path}", f"@@ -0,0 +1,{len(lines)} @@",
                *(f"+{line}" for line in lines)]
    return "\n".join(out) + "\n"


async def draft_proposal(agent_id: str, agent_type: str, slot: int, infer: Infer, *,
                         now_ms: int, max_tokens: int = 256) -> dict[str, Any]:
    """The ``proposal_submitted`` record an agent drafts in ``slot``. ``infer(agent_id,
    prompt, max_tokens, seed)`` returns the model's text; its errors propagate, and an answer
    without code raises :class:`ValueError` (nothing worth proposing)."""
    digest = int(hashlib.sha256(f"{agent_id}|{slot}".encode()).hexdigest()[:8], 16)
    slug, what = TOPICS[digest % len(TOPICS)]
    prompt = (f"Write one small Python function named {slug} that {what}. Use only the "
              "standard library. Answer with the code only, in a ```python block.")
    code = extract_code(await infer(agent_id, prompt, max_tokens, digest))
    if not code.strip():
        raise ValueError(f"the model's answer for {agent_id} held no code")
    safe_agent = re.sub(r"[^a-z0-9_]", "_", agent_id.lower())
    module = f"lab/{safe_agent}/{slug}_{slot}.py"
    test = f"tests/test_{safe_agent}_{slug}_{slot}.py"
    import_name = module[:-3].replace("/", ".")
    files = {module: code,
             test: ("import importlib\n\n\ndef test_module_loads():\n"
                    f"    importlib.import_module({import_name!r})\n")}
    pid = f"auto-{safe_agent}-{slot}"
    return {"event_id": str(uuid.uuid5(_NS, pid)), "occurred_at": now_ms,
            "producer": "agents.proposals.draft", "proposal_id": pid, "agent_id": agent_id,
            "agent_type": agent_type, "title": f"{agent_id}: add {slug}",
            "description": f"Drafted by {agent_id}'s model: a helper that {what}.",
            "file_path": module, "code_before": None, "code_after": code,
            "unified_diff": _diff(files), "target_repo": SCRATCH_REPO, "status": "submitted"}


async def run_drafts(agents: Mapping[str, str], interval_s: float, infer: Infer, emit: Emit,
                     stop: asyncio.Event, *, now_ms: Callable[[], int]) -> None:
    """Each slot, every agent of ``agents`` (id → type) drafts one proposal (module doc).
    A failed inference skips that agent's draft for the slot (logged); emit errors
    propagate."""
    last_slot = -1
    while not stop.is_set():
        slot = int(now_ms() // (interval_s * 1000))
        if slot != last_slot:
            for agent_id, agent_type in sorted(agents.items()):
                try:
                    record = await draft_proposal(agent_id, agent_type, slot, infer,
                                                  now_ms=now_ms())
                except Exception as exc:  # noqa: BLE001 - a failed draft skips one agent's slot
                    log.warning("proposals.draft_failed", agent_id=agent_id, slot=slot,
                                error=f"{type(exc).__name__}: {exc}"[:300])
                    continue
                await emit("proposal_submitted", record)
                log.info("proposals.drafted", agent_id=agent_id,
                         proposal_id=record["proposal_id"])
            last_slot = slot
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=min(interval_s, 60.0))
