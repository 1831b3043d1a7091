"""``lvlup worker proposals``: the proposals pipeline on Kafka.

Consumes ``lvlup.proposals.submitted`` and ``lvlup.proposals.decided`` in group
``lvlup.agents.proposals`` (the toolkit's :class:`~streams.loop.SerialLoop` over a Faust agent,
:class:`~streams.faust_consumer.FaustRecordConsumer`: one record at a time, commit after acks,
poison records — :class:`~schemas.errors.SchemaError`, :class:`ValueError` such as
:class:`~agents.proposals.errors.ProposalInputError` — to ``lvlup.agents.proposals.dlq``, an
``error_event`` for every failure; any other failure ends the process uncommitted):

* a ``proposal_submitted`` goes through :func:`~agents.proposals.pipeline.process_proposal`
  after the custody runs were caught up (:class:`~agents.proposals.runindex.RunIndex` over
  ``lvlup.custody.run-results``). A proposal already processed or decided is skipped, so a
  restart does not run experiments again; one that crashed mid-pipeline runs again and
  reproduces the same event ids;
* a ``proposal_decided`` (policy or operator) yields one ``notification``;
* an ``agent_level_changed`` (``lvlup.agents.levels``) yields one ``level_up`` notification;
* an approved proposal whose ``target_repo`` is ``scratch`` is committed to the scratch
  repository (seeded at start with :func:`agents.proposals.seed.seed_files`: the platform's
  planted insecure module and a legacy parser, with tests of their behaviour — the findings
  the agents' drafts fix; :class:`~agents.proposals.scratch.ScratchRepo`, under the data
  directory) —
  never to the platform's own repository. A proposal whose change cannot be applied there
  yields an ``error_event`` (the decision record itself is valid: it is not dead-lettered).

:func:`serve` also runs guardian's scheduled scan of the platform's own repository
(:func:`agents.proposals.reposcan.run_scans`, at start and every
``settings.proposals.repo_scan_interval_s`` seconds, new findings only: the ones already on the
findings topic are read at start) and the agents' autonomous drafts
(:func:`agents.proposals.draft.run_drafts`, one per agent of
``settings.custody.schedule_agents`` and ``settings.proposals.draft_interval_s`` slot, the
first soon after start, through the inference workers). Drafting starts once the worker has
rebuilt its state (so it knows which drafts are already on the log); an agent drafts once a
custody run result of it that the gate would count is on the log
(:meth:`ProposalsWorker.has_evidence`, see :mod:`agents.proposals.draft` for why), against the
target :meth:`ProposalsWorker.pick` chooses (:mod:`agents.proposals.targets`).

State: per proposal its submitted record, its decision and whether it was processed, in the
worker's compacted state changelog (:class:`~streams.faust_state.ChangelogState`, key
``proposal:<id>``), written — acknowledged — before the record's offset commits. At start
(:meth:`ProposalsWorker.restore`) the restored state is completed with the input records past
the group's committed offsets (the backlog: drafts and operator decisions not consumed yet),
so the drafts never claim a target already on the log; a table never written is seeded once
from the whole log (:meth:`ProposalsWorker.rebuild`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from sqlalchemy import Engine, create_engine

from agents.custody.gate import window_runs
from agents.custody.replay import read_topics
from agents.custody.worker import client_infer
from agents.guardian import Finding, scan_files
from agents.knowledge.answering import memory_infer
from agents.proposals.draft import run_drafts, safe_agent
from agents.proposals.errors import ProposalInputError
from agents.proposals.pipeline import (
    PipelineDeps,
    ProposalPolicy,
    ProposalResult,
    decision_notification,
    level_notification,
    process_proposal,
)
from agents.proposals.records import PRODUCER, error_record, error_reporter
from agents.proposals.reposcan import run_scans
from agents.proposals.runindex import RunIndex
from agents.proposals.scratch import SCRATCH_REPO, ScratchRepo
from agents.proposals.seed import PLANTED_PATH, seed_files
from agents.proposals.targets import Target, choose_target, finding_targets, weak_categories
from inference.client import InferenceClient
from schemas.catalog import Catalog
from schemas.codec import Codec
from schemas.errors import SchemaError
from schemas.groups import ConsumerGroup
from sinks.postgres.memory import PostgresRecall
from streams.consumer import KafkaPartitionReader
from streams.dlq import DeadLetterQueue, SourceRecord, create_dlq_topic, dlq_producer
from streams.faust_consumer import FaustRecordConsumer
from streams.faust_state import SEEDED, ChangelogState
from streams.log_reader import OnUndecodable, read_to_end
from streams.loop import SerialLoop
from streams.offsets import committed_offsets
from streams.producer import EventProducer
from streams.serial import stop_on_signals
from streams.settings import Settings
from streams.wiring import Wiring

__all__ = ["PROPOSALS_GROUP", "ProposalsWorker", "serve"]

PROPOSALS_GROUP = ConsumerGroup.PROPOSALS
#: seconds the other tasks get to finish after one ended, before they are cancelled
STOP_GRACE_S = 10.0
#: the platform's own repository (``agents/proposals/worker.py`` → the root)
REPO_ROOT = Path(__file__).resolve().parents[2]
RECORD_TYPES = ("proposal_submitted", "proposal_decided", "proposal_experimented",
                "custody_run_result", "agent_level_changed")
log = structlog.get_logger(__name__)


class ProposalsWorker:
    """The worker (module doc). ``producer`` routes the emitted records (tests pass one with a
    prefixed router); ``topics`` overrides catalog topic names by record type likewise."""

    def __init__(self, bootstrap: str, codec: Codec, catalog: Catalog,
                 producer: EventProducer, *, policy: ProposalPolicy | None = None,
                 group: str = PROPOSALS_GROUP, topics: Mapping[str, str] | None = None,
                 scratch: ScratchRepo | None = None,
                 seed: Mapping[str, str] | None = None,
                 agent_types: Mapping[str, str] | None = None) -> None:
        self.bootstrap, self.codec, self.producer = bootstrap, codec, producer
        #: agent id → type (its role orders its draft targets: guardian fixes findings first)
        self.agent_types = dict(agent_types or {})
        self.policy = policy or ProposalPolicy()
        names = {rt: catalog.for_record(rt).name for rt in RECORD_TYPES}
        self.topics = {**names, **(topics or {})}
        self.runs = RunIndex(bootstrap, codec, self.topics["custody_run_result"])
        self.done: set[str] = set()
        self.scratch = scratch
        self.seed = dict(seed or {})
        #: decision status by proposal id (a declined proposal's target is open again)
        self.decided: dict[str, str] = {}
        #: guardian's findings of the scratch repository's ``HEAD``: (commit, findings)
        self._scan_cache: tuple[str, list[Finding]] | None = None
        #: submitted records by proposal id (the scratch repository applies approved ones)
        self.submitted: dict[str, dict[str, Any]] = {}
        #: commits made in the scratch repository: proposal id → commit id
        self.commits: dict[str, str] = {}
        self.results: list[ProposalResult] = []
        self.notified = 0
        self.deps = PipelineDeps(emit=self.emit, runs=self.runs.runs, now_ms=self.now_ms,
                                 read_base=self._read_base, read_repo=self._read_repo)
        self.bootstrap, self.group = bootstrap, group
        self.dlq = DeadLetterQueue(dlq_producer(bootstrap), group)
        #: the state table (module doc) and where the state came from at the last start
        self.table = ChangelogState("state")
        self.restored_from: str | None = None
        #: input records of the backlog read at the last start (past the committed offsets)
        self.backlog_read = 0
        self.loop = SerialLoop(
            FaustRecordConsumer(bootstrap, [self.topics["proposal_submitted"],
                                            self.topics["proposal_decided"],
                                            self.topics["agent_level_changed"]], group,
                                state=self.table),
            codec, self.handle, self.dlq, poison=(SchemaError, ValueError),
            on_error=error_reporter(self.emit, component=PRODUCER, group=group,
                                    now_ms=self.now_ms))

    @staticmethod
    def now_ms() -> int:
        """Wall clock, ms since the Unix epoch (UTC)."""
        return int(time.time() * 1000)

    async def emit(self, record_type: str, record: dict[str, Any]) -> None:
        """Publish ``record`` and wait for the broker's ack."""
        await self.producer.emit_async(record_type, record)

    def _read_base(self, target_repo: str, path: str) -> str | None:
        if self.scratch is None or target_repo != SCRATCH_REPO:
            return None
        return self.scratch.read(path)

    def _read_repo(self, target_repo: str) -> Mapping[str, str] | None:
        if self.scratch is None or target_repo != SCRATCH_REPO:
            return None
        return self.scratch.files()

    def _scratch_findings(self) -> tuple[dict[str, str], list[Finding]]:
        """The scratch repository's files at ``HEAD`` and guardian's findings in them (the
        scan is cached per commit). Blocking: run in a thread."""
        if self.scratch is None:
            return {}, []
        files = self.scratch.files()
        head = self.scratch.head()
        if self._scan_cache is None or self._scan_cache[0] != head:
            self._scan_cache = (head, scan_files(files, agent_id=None))
        return files, self._scan_cache[1]

    def claimed(self) -> set[str]:
        """Target ids of the drafts on the log that were not declined."""
        return {str(rec["target"]["target_id"]) for pid, rec in self.submitted.items()
                if rec.get("target") and self.decided.get(pid) != "declined"}

    async def pick(self, agent_id: str, attempt: int) -> tuple[Target, Mapping[str, str]]:
        """The target of ``agent_id``'s draft ``attempt`` (:func:`agents.proposals.targets.
        choose_target`): the scratch repository's findings with tests, the agent's weakest
        custody categories (runs read so far), the targets not claimed, the agent's role
        (``agent_types``: guardian takes findings first); and the repository's files the draft
        refers to."""
        files, findings = await asyncio.to_thread(self._scratch_findings)
        await self.runs.catch_up()
        weak = weak_categories(run.record for run in self.runs.runs(agent_id))
        target = choose_target(safe_agent(agent_id), attempt,
                               fixes=finding_targets(files, findings), weak=weak,
                               claimed=self.claimed(),
                               fixes_first=self.agent_types.get(agent_id) == "guardian")
        log.info("proposals.target", agent_id=agent_id, attempt=attempt,
                 target=target.target_id, kind=target.kind)
        return target, files

    async def has_evidence(self, agent_id: str, at_ms: int) -> bool:
        """Does the run-results topic (read up to now) hold a custody run result of
        ``agent_id`` that the gate would count for a proposal made at ``at_ms`` (inside the
        policy's window)? The drafts wait for it (:mod:`agents.proposals.draft`)."""
        await self.runs.catch_up()
        return bool(window_runs(agent_id, self.runs.runs(agent_id), at_ms, self.policy.gate))

    def is_submitted(self, proposal_id: str) -> bool:
        """Is ``proposal_id`` already on the submitted topic (as rebuilt and consumed)?"""
        return proposal_id in self.submitted

    async def rebuild(self) -> None:
        """Proposals already decided or experimented, and the submitted ones (for the
        scratch repository), from the whole log (bounded read)."""
        records = await read_topics(self.bootstrap, self.codec,
                                    [self.topics["proposal_decided"],
                                     self.topics["proposal_experimented"],
                                     self.topics["proposal_submitted"]])
        self.done = {str(rec["proposal_id"]) for rt, rec in records
                     if rt != "proposal_submitted"}
        self.decided = {str(rec["proposal_id"]): str(rec["status"]) for rt, rec in records
                        if rt == "proposal_decided"}
        self.submitted = {str(rec["proposal_id"]): rec for rt, rec in records
                          if rt == "proposal_submitted"}
        log.info("proposals.rebuilt", done=len(self.done), submitted=len(self.submitted))

    def _value(self, pid: str) -> dict[str, Any]:
        """The table value of proposal ``pid``."""
        return {"submitted": self.submitted.get(pid), "decided": self.decided.get(pid),
                "done": pid in self.done}

    async def _store(self, pid: str) -> None:
        await self.table.write([(f"proposal:{pid}", self._value(pid))])

    async def restore(self) -> None:
        """Load the state from the restored table plus the unconsumed backlog (module doc),
        seeding a table never written from the whole log; then prepare the scratch
        repository. Raises :class:`~streams.log_reader.LogReadStalled` for a stalled read."""
        snapshot = self.table.snapshot()
        if SEEDED in snapshot:
            self.done, self.decided, self.submitted = set(), {}, {}
            for key, value in snapshot.items():
                if key.startswith("proposal:"):
                    pid = key.partition(":")[2]
                    if value["submitted"] is not None:
                        self.submitted[pid] = value["submitted"]
                    if value["decided"] is not None:
                        self.decided[pid] = str(value["decided"])
                    if value["done"]:
                        self.done.add(pid)
            backlog = self.backlog_read = await self._backlog()
            self.restored_from = "table"
        else:
            await self.rebuild()
            backlog = 0
            pids = sorted(set(self.submitted) | set(self.decided) | self.done)
            await self.table.write([(f"proposal:{pid}", self._value(pid)) for pid in pids]
                                   + [(SEEDED, {"proposals": len(pids)})])
            self.restored_from = "log"
        if self.scratch is not None:
            await asyncio.to_thread(self.scratch.ensure)
            if self.seed:
                await asyncio.to_thread(self.scratch.seed, self.seed)
        log.info("proposals.restored", source=self.restored_from, done=len(self.done),
                 submitted=len(self.submitted), backlog=backlog)

    async def _backlog(self) -> int:
        """Take in the submitted and decided records past the group's committed offsets
        (not consumed yet: the loop will serve them); returns how many were read."""
        topics = [self.topics["proposal_submitted"], self.topics["proposal_decided"]]
        reader = KafkaPartitionReader(self.bootstrap)
        await reader.start()
        try:
            tps = await reader.partitions(topics)
            committed = await asyncio.to_thread(committed_offsets, self.bootstrap,
                                                self.group, tps)
            read = await read_to_end(reader, self.codec, topics,
                                     on_undecodable=OnUndecodable.SKIP,
                                     starts={tp: committed.get(tp, 0) for tp in tps})
        finally:
            await reader.stop()
        for rtype, rec in read.pairs():
            pid = str(rec["proposal_id"])
            if rtype == "proposal_submitted":
                self.submitted.setdefault(pid, rec)
            elif rtype == "proposal_decided":
                self.done.add(pid)
                self.decided[pid] = str(rec["status"])
        return len(read.records)

    async def _commit_approved(self, decided: dict[str, Any],
                               msg: SourceRecord) -> None:
        pid = str(decided["proposal_id"])
        proposal = self.submitted.get(pid)
        if (self.scratch is None or str(decided["status"]) != "approved" or proposal is None
                or str(proposal["target_repo"]) != SCRATCH_REPO):
            return
        try:
            commit = await asyncio.to_thread(self.scratch.apply, proposal,
                                             str(decided["decided_by"]))
        except ProposalInputError as exc:
            await self.emit("error_event", error_record(
                exc, component=PRODUCER, now_ms=self.now_ms(), agent_id=str(decided["agent_id"]),
                severity="medium", source=(msg.topic, msg.partition, msg.offset),
                context={"proposal_id": pid, "step": "scratch_commit"}))
            log.warning("proposals.scratch_refused", proposal_id=pid, error=str(exc))
            return
        if commit is not None:
            self.commits[pid] = commit
            log.info("proposals.scratch_committed", proposal_id=pid, commit=commit)

    async def handle(self, record_type: str, record: dict[str, Any],
                     msg: SourceRecord) -> None:
        """Serve one record of the submitted, decided or levels topic."""
        if record_type == "proposal_decided":
            await self.emit("notification", decision_notification(record, self.now_ms()))
            self.done.add(str(record["proposal_id"]))
            self.decided[str(record["proposal_id"])] = str(record["status"])
            self.notified += 1
            log.info("proposals.decision_notified", proposal_id=record["proposal_id"],
                     status=record["status"], decided_by=record["decided_by"])
            await self._commit_approved(record, msg)
            await self._store(str(record["proposal_id"]))
            return
        if record_type == "agent_level_changed":
            await self.emit("notification", level_notification(record, self.now_ms()))
            return
        if record_type != "proposal_submitted":
            raise SchemaError(f"{record_type} on {msg.topic}", topic=msg.topic,
                              partition=msg.partition, offset=msg.offset)
        pid = str(record["proposal_id"])
        self.submitted[pid] = record
        if pid in self.done:
            log.info("proposals.already_processed", proposal_id=pid)
            await self._store(pid)  # its submitted record may be new to the table
            return
        await self.runs.catch_up()
        result = await process_proposal(record, self.deps, self.policy)
        self.done.add(pid)
        await self._store(pid)
        self.results.append(result)

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Create the dead-letter topic if missing, join the group, load the state
        (:meth:`restore`), then serve until ``stop`` is set; ``ready`` is set once the state
        is loaded."""
        await asyncio.to_thread(create_dlq_topic, self.bootstrap, self.group)
        await self.runs.start()
        try:
            await self.loop.run(stop, ready, on_start=self.restore)
        finally:
            await self.runs.stop()


async def _drafts_when_ready(settings: Settings, worker: ProposalsWorker,
                             infer: Callable[..., Awaitable[str]],
                             ready: asyncio.Event, stop: asyncio.Event) -> None:
    """The agents' drafts, started once ``worker`` consumes (its state rebuilt)."""
    waiter = asyncio.create_task(ready.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiter, stopper):
            task.cancel()
    if stop.is_set():
        return
    await run_drafts(settings.custody.schedule_agents, settings.proposals, infer, worker.emit,
                     stop, now_ms=worker.now_ms, evidence=worker.has_evidence,
                     known=worker.is_submitted, pick=worker.pick)


async def serve(settings: Settings, wiring: Wiring) -> None:
    """``lvlup worker proposals``: run a :class:`ProposalsWorker` until SIGTERM/SIGINT, with
    the process's ``wiring`` (codec, catalog, producer)."""
    codec, catalog, bootstrap = wiring.codec, wiring.catalog, wiring.bootstrap
    producer = wiring.producer(PRODUCER)
    stop = stop_on_signals()
    planted = REPO_ROOT / PLANTED_PATH
    worker = ProposalsWorker(bootstrap, codec, catalog, producer,
                             scratch=ScratchRepo(settings.data_dir / "scratch-repo"),
                             seed=seed_files(planted.read_text(encoding="utf-8")
                                             if planted.is_file() else None),
                             agent_types=settings.custody.schedule_agents)
    client = InferenceClient(bootstrap, codec, catalog, producer, requester=PRODUCER)
    store: Engine | None = None
    try:
        async with client:
            ready = asyncio.Event()
            tasks = [asyncio.create_task(worker.run(stop, ready))]
            if (REPO_ROOT / "pyproject.toml").is_file():
                findings = await read_topics(bootstrap, codec,
                                             [catalog.for_record("guardian_finding").name])
                seen = {str(rec["finding_id"]) for _, rec in findings}
                tasks.append(asyncio.create_task(run_scans(
                    [REPO_ROOT], settings.proposals.repo_scan_interval_s, worker.emit, stop,
                    seen=seen, now_ms=worker.now_ms)))
            infer = client_infer(client)
            if settings.custody.use_memory:  # a draft is answered with the agent's memory
                store = create_engine(settings.postgres.sqlalchemy_url(), pool_pre_ping=True)
                infer = memory_infer(PostgresRecall(store), client.infer,
                                     settings.custody.schedule_agents)
            tasks.append(asyncio.create_task(_drafts_when_ready(
                settings, worker, infer, ready, stop)))
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            stop.set()  # one ended (stopped or failed): stop the others
            try:
                for task in done:
                    task.result()  # a failure propagates: the supervisor restarts the process
            finally:  # a draft may be waiting for the model: a grace period, then cancel
                if pending:
                    _, late = await asyncio.wait(pending, timeout=STOP_GRACE_S)
                    for task in late:
                        task.cancel()
                    await asyncio.gather(*pending, return_exceptions=True)
    finally:
        producer.close()
        if store is not None:
            store.dispose()
