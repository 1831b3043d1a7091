"""The custody worker: ``custody_test_requested`` → model answers → graded records → progression.

Pure core :func:`run_custody` (collaborators injected in :class:`CustodyDeps`, as in
:mod:`agents.learning.cycle`) and a thin Kafka loop :class:`CustodyWorker`:

1. plan the items for the agent's current level (:func:`~agents.custody.planning.plan_run`);
2. per item × epoch (:func:`~agents.custody.runs.trials`, seed per trial), ask the model
   (temperature 0, the trial's seed) and grade the answer with
   :func:`~agents.custody.scorers.score` in a thread (code items run in the blocking sandbox);
   one ``custody_item_result`` per trial, emitted once every trial is graded. An inference
   outage or a sandbox that cannot be set up is not the agent's failure: it voids the run
   (:class:`~agents.custody.errors.RunVoided`, nothing emitted), and the worker retries the
   request with back-off, then ends uncommitted so it is redelivered. An inference error
   about this answer (blocked, truncated, invalid output) is a failed trial;
3. emit the ``custody_run_result`` (one per category; a request names one category), apply it
   with :func:`~agents.custody.progression.apply_run` and emit ``agent_level_changed`` when
   the level changes.

Determinism: the same request (seed), state and bank give the same items, prompts and trial
seeds; item results repeat when the model repeats its temperature-0 answers, which the local
engine does only if it does not reuse the previous prompt's KV cache (see the integration
test). Event ids derive from the run id, so a redelivered request reproduces them.

The loop consumes ``lvlup.custody.requests`` in group ``lvlup.agents.custody``, one request at
a time, and commits after every record of the run is acked: the toolkit's
:class:`~streams.loop.SerialLoop` over a Faust agent
(:class:`~streams.faust_consumer.FaustRecordConsumer`, manual acks, concurrency 1). States
(levels, XP, streaks, Elo ratings of agents and items, applied runs, run history) live in the
worker's compacted state changelog (:mod:`agents.custody.store`), restored at start and
written, each change acknowledged, before the request's offset is committed; a request whose
``run_id`` was already applied is skipped. Undecodable or invalid requests (unknown category,
no items) go to ``lvlup.agents.custody.dlq``; anything else (Kafka down, a bug) ends the
process so the supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, cast

import structlog

from agents.custody.bank import Bank, load_bank
from agents.custody.errors import BankError, RunVoided, SandboxUnavailable
from agents.custody.humaneval import CODE_STOP, completion_prefill
from agents.custody.items import Category, Item, ScoreResult
from agents.custody.planning import plan_run
from agents.custody.policy import CustodyPolicy, load_policy
from agents.custody.progression import Progress, apply_run
from agents.custody.regression import emit_regressions
from agents.custody.replay import fold, new_agent, read_topics
from agents.custody.runs import (
    RunContext,
    item_result_record,
    summarize_run,
    trials,
    with_evidence,
)
from agents.custody.scorers import SCORER_VERSIONS, score
from agents.custody.state import AgentState
from agents.custody.store import CustodyState
from agents.knowledge.answering import CustodyMemory, cite
from inference.client import InferenceClient, InferenceFailed, InferenceTimeout
from inference.errors import RETRYABLE_CODES
from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.groups import ConsumerGroup
from schemas.records import CustodyTestRequestedRecord
from sinks.errors import StoreUnavailable
from streams.dlq import DeadLetterQueue, SourceRecord, create_dlq_topic, dlq_producer
from streams.faust_consumer import FaustRecordConsumer
from streams.faust_state import ChangelogState
from streams.loop import SerialLoop

if TYPE_CHECKING:
    pass

__all__ = [
    "CUSTODY_GROUP", "MODEL_SEED_MASK", "OUTAGE_CODES", "RUN_HISTORY", "CustodyDeps",
    "CustodyWorker", "Infer", "RunOutcome", "client_infer", "run_custody",
]  # fmt: skip

CUSTODY_GROUP = ConsumerGroup.CUSTODY
#: run results kept in memory for the training ground's weakness ranking
RUN_HISTORY = 10_000
#: The model takes 32-bit seeds (``inference.types``): a trial's 63-bit seed is masked to this.
MODEL_SEED_MASK = 2**32 - 1
#: ``InferenceFailed`` codes that mean the model could not be asked (void, not failed).
OUTAGE_CODES = frozenset(RETRYABLE_CODES) | {"model_unavailable", "budget_exceeded"}
log = structlog.get_logger(__name__)


class Infer(Protocol):
    """``await infer(agent_id, prompt, max_tokens, seed, prefill="", *, stop=())``: the model's
    answer text, the continuation of ``prefill`` (the start of its turn) ending before the
    first ``stop`` sequence (see :class:`CustodyDeps`)."""

    def __call__(self, agent_id: str, prompt: str, max_tokens: int, seed: int,
                 prefill: str = "", *, stop: Sequence[str] = ()) -> Awaitable[str]: ...


@dataclass
class CustodyDeps:
    """What a run needs from outside.

    ``infer(agent_id, prompt, max_tokens, seed)`` (``seed``: the trial's seed masked with
    :data:`MODEL_SEED_MASK`) returns the model's answer text (temperature
    0) — for a HumanEval-style item ``infer(…, prefill, stop=CODE_STOP)``, the continuation
    of its :func:`~agents.custody.humaneval.completion_prefill` — or raises:
    :class:`~inference.client.InferenceTimeout`, :class:`TimeoutError`, :class:`ConnectionError`
    or :class:`~inference.client.InferenceFailed` with a code in
    :data:`OUTAGE_CODES` void the run; another ``InferenceFailed`` fails the trial; anything
    else propagates (a bug ends the worker); ``emit(record_type,
    record)`` publishes and returns once acked; ``now_ms()`` is the clock (ms since the Unix
    epoch, UTC); ``grade(item, answer)`` is blocking (run in a thread); ``max_tokens`` caps
    the items' own answer-length hints (None: no cap). ``memory``: when set, items are
    answered through it instead of ``infer`` (the agent's role and recalled knowledge,
    :class:`~agents.knowledge.answering.CustodyMemory`) and each item result cites the
    inference request and the knowledge positions; a memory store outage
    (:class:`~sinks.errors.StoreUnavailable`) voids the run like an inference outage.
    ``memory_ready()``, when set, is awaited once before a run answered with memory: it
    returns when the memory view holds what was learned before the request (read-your-writes
    through the sink's committed offsets; a retest follows its cycle within milliseconds).
    """

    infer: Infer
    emit: Callable[[str, dict[str, Any]], Awaitable[None]]
    now_ms: Callable[[], int] = field(default=lambda: int(time.time() * 1000))
    grade: Callable[[Item, str], ScoreResult] = score
    max_tokens: int | None = None
    memory: CustodyMemory | None = None
    memory_ready: Callable[[], Awaitable[None]] | None = None


@dataclass(frozen=True)
class RunOutcome:
    """A finished run: the emitted ``item_records`` (trial order) and ``run_records``, the
    :class:`~agents.custody.progression.Progress` (new state, level-change record or None,
    combined verdict, XP gained, updated item ratings)."""

    run_id: str
    items: list[Item]
    item_records: list[dict[str, Any]]
    run_records: list[dict[str, Any]]
    progress: Progress

    @property
    def state(self) -> AgentState:
        """The agent's state after the run."""
        return self.progress.state


async def _trial(deps: CustodyDeps, agent_id: str, agent_type: str, item: Item, seed: int
                 ) -> tuple[ScoreResult, dict[str, Any]]:
    """The grade of one trial and the ``custody_item_result`` v2 fields citing the memory
    it used (``request_id`` None and no ``knowledge`` without memory)."""
    max_tokens = item.max_tokens if deps.max_tokens is None else min(item.max_tokens,
                                                                     deps.max_tokens)
    cited: dict[str, Any] = {"request_id": None, "knowledge": []}
    try:
        code = completion_prefill(item)
        if deps.memory is None and code:
            answer = code + await deps.infer(agent_id, item.prompt, max_tokens,
                                             seed & MODEL_SEED_MASK, code, stop=CODE_STOP)
        elif deps.memory is None:
            answer = await deps.infer(agent_id, item.prompt, max_tokens, seed & MODEL_SEED_MASK)
        else:
            answered = await deps.memory.answer(agent_id, agent_type, item, max_tokens,
                                                seed & MODEL_SEED_MASK)
            answer = answered.text
            cited.update(cite(answered.refs, answered.request_id))
    except (InferenceTimeout, TimeoutError, ConnectionError, StoreUnavailable) as exc:
        raise RunVoided("inference_unavailable", f"{type(exc).__name__}: {exc}") from exc
    except InferenceFailed as exc:
        if exc.code in OUTAGE_CODES:
            raise RunVoided("inference_unavailable", str(exc)) from exc
        why = f"inference failed: {exc}"[:500]  # about this answer: the agent's failure
        return ScoreResult(0.0, False, why, f"{item.scorer}/{SCORER_VERSIONS[item.scorer]}"), cited
    try:
        return await asyncio.to_thread(deps.grade, item, answer), cited
    except SandboxUnavailable as exc:
        raise RunVoided("sandbox_unavailable", str(exc)) from exc


async def run_custody(
    request: Mapping[str, Any],
    deps: CustodyDeps,
    state: AgentState,
    bank: Bank,
    *,
    item_ratings: Mapping[str, float] | None = None,
    history: Iterable[Mapping[str, Any]] = (),
    policy: CustodyPolicy | None = None,
) -> RunOutcome:
    """Run the custody test ``request`` (a ``custody_test_requested`` record: ``run_id``,
    ``agent_id``, ``category``, ``item_count``, ``epochs``, ``seed``) for the agent in
    ``state`` at its current level (the request's ``tier``/``level`` are informative).

    ``history``: earlier ``custody_run_result`` records (any agents; the evidence filters)
    pooled with this run's by :func:`~agents.custody.progression.apply_run` under ``policy``
    (default: the packaged v1). Grades every trial, then emits the item results, the run
    result(s) (with the bank's version and content hash, the policy and the pooled evidence
    verdict) and a level change if any, in that order, each awaited. Raises, before anything
    is emitted, :class:`ValueError` for a request that cannot be run (unknown category,
    ``item_count`` or ``epochs`` < 1, another agent's state) and
    :class:`~agents.custody.errors.RunVoided` when a trial could not be judged (inference
    outage, sandbox unavailable); and whatever ``deps.emit`` or ``deps.grade`` raise otherwise
    (a bug: it propagates).
    """
    if request["agent_id"] != state.agent_id:
        raise ValueError(f"request for {request['agent_id']!r} with state of {state.agent_id!r}")
    if int(request["epochs"]) < 1:
        raise ValueError(f"epochs must be >= 1, got {request['epochs']}")
    policy = policy or load_policy()
    ctx = RunContext(run_id=str(request["run_id"]), agent_id=state.agent_id,
                     agent_type=state.agent_type, level=state.level, seed=int(request["seed"]),
                     epochs=int(request["epochs"]), bank_version=bank.version,
                     bank_hash=bank.content_hash, policy_version=policy.ref)
    items = plan_run(state, Category(request["category"]), int(request["item_count"]),
                     ctx.seed, bank, item_ratings=item_ratings,
                     sources=request.get("sources") or ())
    if not items:
        raise ValueError(f"no items in the bank for {request['category']!r}")
    item_records: list[dict[str, Any]] = []
    if deps.memory is not None and deps.memory_ready is not None:
        try:
            await deps.memory_ready()
        except StoreUnavailable as exc:
            raise RunVoided("memory_unavailable", str(exc)) from exc
    for item, epoch, seed in trials(items, ctx):
        started = time.monotonic()
        result, cited = await _trial(deps, state.agent_id, state.agent_type, item, seed)
        rec = item_result_record(ctx, item, epoch, result,
                                 duration_ms=int((time.monotonic() - started) * 1000),
                                 occurred_at_ms=deps.now_ms(), **cited)
        item_records.append(rec)
        log.info("custody.trial", run_id=ctx.run_id, item=item.id, passed=rec["passed"])
    end_ms = deps.now_ms()
    summaries = [s.record for s in summarize_run(ctx, item_records, occurred_at_ms=end_ms)]
    progress = apply_run(state, summaries, item_records, occurred_at_ms=end_ms,
                         history=history, policy=policy, item_ratings=item_ratings)
    run_records = [with_evidence(r, progress.evidence.get(str(r["category"])))
                   for r in summaries]
    for rec in item_records:
        await deps.emit("custody_item_result", rec)
    for rec in run_records:
        await deps.emit("custody_run_result", rec)
    if progress.level_changed is not None:
        await deps.emit("agent_level_changed", progress.level_changed)
    log.info("custody.run_done", run_id=ctx.run_id, verdict=progress.verdict,
             evidence={c: e.verdict for c, e in progress.evidence.items()},
             xp_gained=progress.xp_gained, level=progress.state.level)
    return RunOutcome(ctx.run_id, items, item_records, run_records, progress)


class CustodyWorker:
    """Consumes custody requests one at a time (see the module doc). ``topics`` overrides the
    catalog names by record type (tests use prefixed topics); ``deps`` are the run's
    collaborators (their ``emit`` must route like ``topics``); ``policy`` the custody policy
    (default: the packaged v1)."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog, deps: CustodyDeps, *,
                 bank: Bank | None = None, group: str = CUSTODY_GROUP,
                 topics: Mapping[str, str] | None = None, void_retries: int = 5,
                 void_backoff_s: float = 2.0, policy: CustodyPolicy | None = None) -> None:
        self.bootstrap, self.codec, self.deps, self.group = bootstrap, codec, deps, group
        #: the custody policy (SPRT, window, XP, gate); the packaged v1 by default
        self.policy = policy or load_policy()
        #: a void run is retried this many times, after 2**n × ``void_backoff_s`` s (≤ 60 s)
        self.void_retries, self.void_backoff_s = void_retries, void_backoff_s
        self.bank = bank or load_bank()
        names = {rt: catalog.for_record(rt).name for rt in
                 ("custody_test_requested", "custody_run_result", "custody_item_result",
                  "agent_level_changed")}
        self.topics = {**names, **(topics or {})}
        #: levels, XP, Elo, applied runs and run history (:mod:`agents.custody.store`)
        self.memory = CustodyState.empty(RUN_HISTORY)
        self.outcomes: list[RunOutcome] = []
        #: run ids of requests skipped because they were already applied (redeliveries)
        self.skipped: list[str] = []
        #: where the state came from at the last start: ``"table"`` or ``"log"`` (seeded)
        self.restored_from: str | None = None
        self.table: ChangelogState | None = None
        self.dlq = DeadLetterQueue(dlq_producer(bootstrap), group)

    @property
    def states(self) -> dict[str, AgentState]:
        """Each agent's state by agent id."""
        return self.memory.states

    @property
    def item_ratings(self) -> dict[str, float]:
        """Each rated item's Elo rating by item id."""
        return self.memory.item_ratings

    @property
    def applied(self) -> set[str]:
        """The run ids already applied (a request naming one is skipped)."""
        return self.memory.applied

    @property
    def run_history(self) -> deque[Mapping[str, Any]]:
        """The newest ``custody_run_result`` records (at most :data:`RUN_HISTORY`)."""
        return self.memory.history

    async def rebuild(self) -> None:
        """Replace the state with the one folded from the log (bounded read,
        :mod:`agents.custody.replay`)."""
        records = await read_topics(self.bootstrap, self.codec,
                                    [self.topics["custody_run_result"],
                                     self.topics["custody_item_result"],
                                     self.topics["agent_level_changed"]])
        rebuilt = fold(records, self.policy)
        self.memory = CustodyState.from_fold(
            rebuilt, (r for t, r in records if t == "custody_run_result"), RUN_HISTORY)
        log.info("custody.rebuilt", agents=len(self.states), runs=len(self.applied),
                 rated_items=len(self.item_ratings))

    async def restore(self) -> None:
        """Load the state from the restored changelog; one never seeded (a log written
        before it existed, or a fresh one) is seeded from the log fold first."""
        if self.table is None:
            raise RuntimeError("restore() before run() declared the state table")
        started = time.monotonic()
        restored = CustodyState.from_snapshot(self.table.snapshot(), RUN_HISTORY)
        if restored is None:
            await self.rebuild()
            await self.table.write(self.memory.seed_changes())
            self.restored_from = "log"
        else:
            self.memory, self.restored_from = restored, "table"
        log.info("custody.restored", source=self.restored_from, agents=len(self.states),
                 runs=len(self.applied), history=len(self.run_history),
                 seconds=round(time.monotonic() - started, 3))

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Create the dead-letter topic if missing, join the group (a Faust agent:
        :class:`~streams.faust_consumer.FaustRecordConsumer`, whose app restores the state
        table), load the state (:meth:`restore`), then serve until ``stop`` is set; ``ready``
        is set once the state is loaded."""
        await asyncio.to_thread(create_dlq_topic, self.bootstrap, self.group)
        self.table = ChangelogState("state")
        consumer = FaustRecordConsumer(self.bootstrap, [self.topics["custody_test_requested"]],
                                       self.group, max_poll_interval_s=3600.0,
                                       state=self.table)
        loop = SerialLoop(consumer, self.codec, self.handle, self.dlq,
                          accept={"custody_test_requested"},
                          poison=(SchemaError, ValueError, BankError))
        await loop.run(stop, ready, on_start=self.restore)

    async def handle(self, _record_type: str, record: dict[str, Any],
                     _source: SourceRecord) -> RunOutcome | None:
        """Serve one decoded request; returns its outcome (None if skipped). A request the
        bank cannot plan (``ValueError``, :class:`BankError`) raises: the loop dead-letters it."""
        request = cast(CustodyTestRequestedRecord, record)  # the loop accepts only this type
        if request["run_id"] in self.applied:
            log.info("custody.already_applied", run_id=request["run_id"])
            self.skipped.append(request["run_id"])
            return None
        agent = request["agent_id"]
        state = self.states.get(agent) or new_agent(agent, request["agent_type"],
                                                    request["level"])
        outcome = await self._run_retrying_void(request, state)
        # issue #19: pass-rate regression test over the history before this run plus it
        await emit_regressions(self.deps.emit, self.run_history, outcome.run_records)
        changes = self.memory.apply(outcome.run_id, outcome.state,
                                    outcome.progress.item_ratings, outcome.run_records)
        if self.table is not None:  # on the changelog before the request's offset commits
            await self.table.write(changes)
        self.outcomes.append(outcome)
        return outcome

    async def _run_retrying_void(self, request: Mapping[str, Any], state: AgentState
                                 ) -> RunOutcome:
        """Run ``request``; a void run (:class:`RunVoided`) is retried with back-off and,
        after :attr:`void_retries`, re-raised so the request stays uncommitted."""
        for attempt in range(self.void_retries + 1):
            try:
                return await _run_custody_once(self, request, state)
            except RunVoided as exc:
                log.warning("custody.run_voided", run_id=request["run_id"], reason=exc.reason,
                            error=str(exc)[:300], attempt=attempt)
                if attempt == self.void_retries:
                    raise
                await asyncio.sleep(min(60.0, self.void_backoff_s * 2**attempt))
        raise AssertionError("unreachable")  # the loop returns or raises


async def _run_custody_once(worker: CustodyWorker, request: Mapping[str, Any],
                            state: AgentState) -> RunOutcome:
    agent = state.agent_id
    history = [r for r in worker.run_history if r["agent_id"] == agent]
    return await run_custody(request, worker.deps, state, worker.bank,
                             item_ratings=worker.item_ratings, history=history,
                             policy=worker.policy)


def client_infer(client: InferenceClient, timeout_s: float = 300.0
                 ) -> Callable[..., Awaitable[str]]:
    """``CustodyDeps.infer`` over an entered :class:`InferenceClient`: ``infer(agent_id,
    prompt, max_tokens, seed, prefill="", *, stop=())`` — one user message, temperature 0, the
    trial's seed, the model's turn started with ``prefill``; returns the response ``text``
    (the continuation of ``prefill``, ending before the first ``stop`` sequence)."""

    async def infer(agent_id: str, prompt: str, max_tokens: int, seed: int,
                    prefill: str = "", *, stop: Sequence[str] = ()) -> str:
        response = await client.infer(agent_id=agent_id, max_tokens=max_tokens, seed=seed,
                                      messages=[{"role": "user", "content": prompt}],
                                      temperature=0.0, timeout_s=timeout_s, prefill=prefill,
                                      stop=stop)
        return str(response.get("text") or "")

    return infer
