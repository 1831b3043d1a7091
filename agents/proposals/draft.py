"""Autonomous proposals: an agent drafts a targeted change with the model and submits it.

Every slot of ``settings.draft_interval_s`` seconds (slot = ⌊epoch seconds / interval⌋) each
agent picks a target (:mod:`agents.proposals.targets`: a guardian finding to fix in the
scratch repository, a helper for the weakest category of its custody record, or a helper whose
tests are written first) and asks the model (temperature 0, a seed from agent and slot) for
the code (:mod:`agents.proposals.compose`: prompt, answer → ``proposal_submitted`` with its
``target``). The proposal is for the scratch repository (``target_repo="scratch"``) and goes
through the lifecycle: the custody gate, guardian's scan of every file it touches, the
experiment (tests that must run the changed lines), the decision. Ids derive from agent and
slot (``auto-<agent>-<slot>``): a restarted scheduler does not draft a slot whose proposal is
already on the log (``known``), and a second scheduler racing it submits the same id, which
the worker skips.

Scheduling (:func:`run_drafts`), one agent at a time (one model request in flight):

* **first draft soon after start.** The current slot is due at start, so a process drafts
  within seconds of its evidence being there — not after a whole interval.
* **evidence first.** The gate judges a proposal by the agent's custody runs *up to the
  proposal's event time* (so a replay of the log reaches the same decision). A draft made
  before the agent's first custody run result exists can only be rejected for lack of
  evidence ("0 runs in window"), which says nothing about the agent and costs a model call.
  So, with ``settings.draft_after_custody`` (the default), an agent without a custody run
  result the gate would count (``evidence(agent_id, at_ms)``) waits — checked again every
  ``draft_poll_s`` — and drafts as soon as the first one is on the log. We do not instead
  re-run the gate when eligibility changes: a gate decision must depend only on the log up
  to the proposal, not on when the worker happened to look, or replays would disagree. An
  agent whose custody runs never come (schedule off, custody worker down) never drafts; it is
  logged once per slot (``proposals.draft_waiting``).
* **retries.** A failed draft (the inference worker's error or timeout, an answer without
  the function asked for — the local 270M base model often answers with an empty block) is
  tried again after ``draft_retry_s`` on the next target (temperature 0 would repeat the same
  answer to the same prompt), at most ``draft_attempts`` times per slot; then the agent
  waits for the next slot, which goes on from the next target too (the agent's failed
  attempts since its last draft are counted across slots: a new slot does not ask the
  question that just failed again). Emit errors propagate (the worker process is restarted).

:func:`draft_proposal` is pure over its ``infer`` collaborator; :func:`run_drafts` is the
schedule loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from agents.proposals.compose import (
    DRAFT_STOP,
    build_record,
    extract_code,
    prefill_for,
    prompt_for,
)
from agents.proposals.targets import Target, choose_target
from streams.settings import ProposalsSettings

__all__ = ["Pick", "default_pick", "draft_id", "draft_proposal", "extract_code", "run_drafts"]

log = structlog.get_logger(__name__)

#: ``infer(agent_id, prompt, max_tokens, seed, prefill, *, stop)``: the model's continuation
#: of ``prefill`` (the start of its turn) — the text after it, not including it — ending
#: before the first of the ``stop`` sequences (a sequence of strings)
Infer = Callable[..., Awaitable[str]]
Emit = Callable[[str, dict[str, Any]], Awaitable[None]]
#: ``evidence(agent_id, at_ms)``: does the log hold a custody run result the gate would
#: count for a proposal of ``agent_id`` made at ``at_ms`` (ms since the epoch)?
Evidence = Callable[[str, int], Awaitable[bool]]
#: ``pick(agent_id, attempt)`` → (the target of that attempt, the scratch repository's files
#: ``{path: text}`` it refers to)
Pick = Callable[[str, int], Awaitable[tuple[Target, Mapping[str, str]]]]


def safe_agent(agent_id: str) -> str:
    """``agent_id`` as a path and module component (``[a-z0-9_]``)."""
    return re.sub(r"[^a-z0-9_]", "_", agent_id.lower())


def draft_id(agent_id: str, slot: int) -> str:
    """The proposal id an agent's draft of ``slot`` gets: ``auto-<agent>-<slot>``."""
    return f"auto-{safe_agent(agent_id)}-{slot}"


async def default_pick(agent_id: str, attempt: int) -> tuple[Target, Mapping[str, str]]:
    """Helpers only (no scratch repository, no custody record): the ``attempt``-th task."""
    return choose_target(safe_agent(agent_id), attempt, fixes=(), weak=(), claimed=set()), {}


async def draft_proposal(agent_id: str, agent_type: str, slot: int, infer: Infer, *,
                         now_ms: int, pick: Pick = default_pick, max_tokens: int = 200,
                         attempt: int = 0) -> dict[str, Any]:
    """The ``proposal_submitted`` record an agent drafts in ``slot``: ``pick(agent_id,
    attempt)`` gives the target (``attempt`` 0, 1, … moves on to the next; the proposal id
    stays ``auto-<agent>-<slot>``), ``infer(agent_id, prompt, max_tokens, seed, prefill,
    stop=…)`` the model's continuation of the function's header
    (:func:`~agents.proposals.compose.prefill_for`) up to the code block's closing fence
    (:data:`~agents.proposals.compose.DRAFT_STOP`). Its errors propagate, and an answer
    without the function asked for raises :class:`ValueError` (nothing worth proposing)."""
    digest = int(hashlib.sha256(f"{agent_id}|{slot}".encode()).hexdigest()[:8], 16)
    target, repo = await pick(agent_id, attempt)
    prompt, prefill = prompt_for(target, repo), prefill_for(target, repo)
    answer = prefill + await infer(agent_id, prompt, max_tokens, (digest + attempt) % 2**32,
                                   prefill, stop=DRAFT_STOP)
    return build_record(target, answer, proposal_id=draft_id(agent_id, slot),
                        agent_id=agent_id, agent_type=agent_type, now_ms=now_ms, repo=repo)


@dataclass
class _Due:
    """One agent's draft state in the current slot."""

    slot: int = -1
    attempts: int = 0
    retry_at_ms: int = 0
    done: bool = False
    waiting_logged: bool = False


async def _try_draft(agent_id: str, agent_type: str, due: _Due, settings: ProposalsSettings,
                     *, infer: Infer, emit: Emit, now_ms: Callable[[], int],
                     pick: Pick, cursor: dict[str, int]) -> None:
    """One draft attempt for ``agent_id`` (updates ``due`` and ``cursor``: the agent's
    failed attempts since its last draft, so the next attempt — in this slot or the next —
    moves on to the next target instead of asking the same question again); emit errors
    propagate."""
    attempt = cursor.get(agent_id, 0)
    due.attempts += 1
    try:
        record = await draft_proposal(agent_id, agent_type, due.slot, infer, now_ms=now_ms(),
                                      attempt=attempt, pick=pick)
    except Exception as exc:  # noqa: BLE001 - a failed draft is retried, then skips the slot
        cursor[agent_id] = attempt + 1
        due.done = due.attempts >= settings.draft_attempts
        due.retry_at_ms = now_ms() + int(settings.draft_retry_s * 1000)
        log.warning("proposals.draft_failed", agent_id=agent_id, slot=due.slot,
                    attempt=due.attempts, of=settings.draft_attempts, gave_up=due.done,
                    error=f"{type(exc).__name__}: {exc}"[:300])
        return
    await emit("proposal_submitted", record)
    cursor[agent_id] = 0
    due.done = True
    log.info("proposals.drafted", agent_id=agent_id, proposal_id=record["proposal_id"],
             attempt=due.attempts, file_path=record["file_path"],
             target=record["target"]["target_id"])


async def run_drafts(agents: Mapping[str, str], settings: ProposalsSettings, infer: Infer,
                     emit: Emit, stop: asyncio.Event, *, now_ms: Callable[[], int],
                     evidence: Evidence | None = None,
                     known: Callable[[str], bool] | None = None,
                     pick: Pick = default_pick) -> None:
    """Until ``stop`` is set, each agent of ``agents`` (id → type) drafts one proposal per
    slot (module doc), agents in id order, one draft at a time. ``evidence`` is asked before
    an agent's draft when ``settings.draft_after_custody`` (None: no wait); ``known(pid)``
    tells a proposal id already on the log (a restart in the same slot does not draft it
    again: a re-submission would also set the proposal's status back to ``submitted`` in the
    views); ``pick`` chooses each attempt's target (:data:`Pick`). When
    ``settings.draft_interval_s`` is 0 it drafts nothing and only waits for ``stop`` (the
    worker stops all its tasks when one returns)."""
    if not settings.draft_interval_s:
        log.info("proposals.drafts_off")
        await stop.wait()
        return
    interval_ms = settings.draft_interval_s * 1000
    due = {agent_id: _Due() for agent_id in agents}
    cursor: dict[str, int] = {}
    while not stop.is_set():
        for agent_id, agent_type in sorted(agents.items()):
            if stop.is_set():
                break
            now, state = now_ms(), due[agent_id]
            slot = int(now // interval_ms)
            if state.slot != slot:
                state = due[agent_id] = _Due(slot=slot)
            if state.done or now < state.retry_at_ms:
                continue
            if known is not None and known(draft_id(agent_id, slot)):
                state.done = True
                log.info("proposals.draft_exists", agent_id=agent_id,
                         proposal_id=draft_id(agent_id, slot))
                continue
            if (settings.draft_after_custody and evidence is not None
                    and not await evidence(agent_id, now)):
                if not state.waiting_logged:
                    state.waiting_logged = True
                    log.info("proposals.draft_waiting", agent_id=agent_id, slot=slot,
                             reason="no custody run result of the agent yet")
                continue
            await _try_draft(agent_id, agent_type, state, settings, infer=infer, emit=emit,
                             now_ms=now_ms, pick=pick, cursor=cursor)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.draft_poll_s)
