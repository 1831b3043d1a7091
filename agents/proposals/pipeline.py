"""One proposal through the lifecycle: gate → scan → experiment → policy (pure core).

:func:`process_proposal` takes a ``proposal_submitted`` record and its collaborators
(:class:`PipelineDeps`) and emits, each awaited (acked) before the next:

1. ``proposal_gated`` — the custody gate (:func:`agents.custody.gate.eligible`) over the
   agent's runs, evaluated at the proposal's ``occurred_at``, citing the runs' positions. An
   ineligible agent's proposal ends here with ``proposal_decided`` (declined by ``policy``,
   the gate's reason) and a notification;
2. ``guardian_finding`` × n, then ``proposal_scanned`` (guardian over every post-image file,
   whatever its kind; the verdict counts the findings the change introduced —
   :mod:`agents.proposals.rescan`: a modified file's base is scanned too); a new
   ``high``/``critical`` finding raises a high-priority notification;
3. ``experiment_requested``, ``experiment_result``, ``proposal_experimented`` (the proposal's
   tests and the target repository's tests of the modules it changes, in the sandbox, each
   traced for the changed lines it runs: :mod:`agents.proposals.experiment`);
4. the policy (:mod:`agents.proposals.judge`): ``proposal_decided`` declined by ``policy``
   for a blocking new finding (:attr:`ProposalPolicy.auto_decline_blocking`), a failed
   experiment or one no test of which ran a changed line, or a finding fix whose rescan still
   shows the finding (:attr:`ProposalPolicy.auto_decline_unproven`); approved by ``policy``
   when a targeted draft passed all of it (:attr:`ProposalPolicy.auto_approve_targeted`);
   otherwise the proposal waits for an operator (``lvlup proposals decide``). The decision's
   reason and ``evidence`` cite the tests run, passed and exercising, the scan and the
   target.

Notifications for decisions are not emitted here: the worker emits one for every
``proposal_decided`` it reads (policy and operator alike, :func:`decision_notification`).
A proposal whose files cannot be built (diff does not apply) is declined by policy with the
reason. Raises what the collaborators raise (retryable: scanner, sandbox, delivery).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from agents.custody.gate import PositionedRun, eligible
from agents.custody.policy import CustodyPolicy, load_policy
from agents.custody.sandbox import SandboxLimits, SandboxResult, run_python
from agents.guardian import Finding, VerdictPolicy, scan_files, scan_verdict
from agents.guardian.finding import Severity, severity_rank
from agents.proposals.coverage import changed_lines
from agents.proposals.errors import ProposalInputError
from agents.proposals.experiment import ExperimentSummary, run_tests, summarize
from agents.proposals.files import proposal_files
from agents.proposals.judge import Judgement, judge
from agents.proposals.records import (
    decided_record,
    experiment_records,
    finding_records,
    gated_record,
    notification_record,
    scanned_record,
)
from agents.proposals.rescan import check_target, new_findings

__all__ = ["PipelineDeps", "ProposalPolicy", "ProposalResult", "decision_notification",
           "level_notification", "process_proposal"]

log = structlog.get_logger(__name__)

Emit = Callable[[str, dict[str, Any]], Awaitable[None]]


def _sandbox(source: str, limits: SandboxLimits) -> SandboxResult:
    return run_python(source, limits=limits)


@dataclass(frozen=True)
class ProposalPolicy:
    """The pipeline's tunables: the custody ``gate`` policy (pooled SPRT evidence; the
    packaged ``custody-v1`` by default), the scan ``verdict`` policy, the
    per-test sandbox ``limits`` (seconds, bytes), whether a failed scan declines the proposal
    (``auto_decline_blocking``), the severity from which a finding alerts (``alert_at``),
    the most tests one experiment runs (``max_tests``; worst case ``max_tests`` ×
    ``limits.wall_seconds`` per proposal), whether a failed experiment or one that exercised
    nothing declines it (``auto_decline_unproven``) and whether a targeted draft that passed
    everything is approved by policy (``auto_approve_targeted``; it lands in the scratch
    repository only — other proposals wait for an operator); see
    :mod:`agents.proposals.judge`."""

    gate: CustodyPolicy = field(default_factory=load_policy)
    verdict: VerdictPolicy = field(default_factory=VerdictPolicy)
    limits: SandboxLimits = field(default_factory=lambda: SandboxLimits(
        cpu_seconds=5, wall_seconds=15.0, memory_bytes=512 * 2**20))
    auto_decline_blocking: bool = True
    alert_at: Severity = "high"
    max_tests: int = 50
    auto_decline_unproven: bool = True
    auto_approve_targeted: bool = True


@dataclass
class PipelineDeps:
    """Collaborators: ``emit(record_type, record)`` returns once acked; ``runs(agent_id)`` the
    agent's positioned custody runs; ``now_ms()`` the clock (ms since the epoch, UTC);
    ``scan(files, proposal_id, agent_id)`` and ``run_python(source, limits)`` are blocking
    (run in threads); ``read_base(target_repo, path)`` the original text of a file the diff
    modifies (None: unknown); ``read_repo(target_repo)`` (blocking) the repository's files
    ``{path: text}`` whose tests and modules the experiment may need (None: none)."""

    emit: Emit
    runs: Callable[[str], list[PositionedRun]]
    now_ms: Callable[[], int]
    scan: Callable[[dict[str, str], str, str], list[Finding]] = field(
        default=lambda files, pid, aid: scan_files(files, proposal_id=pid, agent_id=aid))
    run_python: Callable[[str, SandboxLimits], SandboxResult] = _sandbox
    read_base: Callable[[str, str], str | None] | None = None
    read_repo: Callable[[str], Mapping[str, str] | None] | None = None


@dataclass(frozen=True)
class ProposalResult:
    """What happened: the final ``stage`` (``gated_out``, ``invalid``, ``declined``,
    ``approved``, ``awaiting_decision``), the gate's reason, findings, the experiment summary
    and the policy's judgement."""

    proposal_id: str
    stage: str
    gate_reason: str
    findings: list[Finding] = field(default_factory=list)
    experiment: ExperimentSummary | None = None
    judgement: Judgement | None = None


async def _decline(deps: PipelineDeps, proposal: Mapping[str, Any], reason: str) -> None:
    await deps.emit("proposal_decided", decided_record(
        str(proposal["proposal_id"]), str(proposal["agent_id"]), approve=False,
        decided_by="policy", reason=reason, now_ms=deps.now_ms()))


async def process_proposal(proposal: Mapping[str, Any], deps: PipelineDeps,
                           policy: ProposalPolicy | None = None) -> ProposalResult:
    """Take ``proposal`` (a ``proposal_submitted`` record, physical values) through the
    lifecycle (module doc) and return what happened."""
    policy = policy or ProposalPolicy()
    pid, agent = str(proposal["proposal_id"]), str(proposal["agent_id"])
    at_ms = int(proposal["occurred_at"])
    category = proposal.get("category")
    decision = eligible(agent, deps.runs(agent), at_ms, policy.gate,
                        proposal_category=None if category is None else str(category))
    await deps.emit("proposal_gated", gated_record(proposal, decision, deps.now_ms()))
    if not decision.eligible:
        await _decline(deps, proposal, f"custody gate: {decision.reason}")
        log.info("proposals.gated_out", proposal_id=pid, agent_id=agent, reason=decision.reason)
        return ProposalResult(pid, "gated_out", decision.reason)
    try:
        repo, read_base = str(proposal["target_repo"]), deps.read_base
        files = proposal_files(proposal, None if read_base is None
                               else lambda path: read_base(repo, path))
    except ProposalInputError as exc:
        await _decline(deps, proposal, f"invalid proposal: {exc}")
        return ProposalResult(pid, "invalid", decision.reason)
    before = _bases(proposal, files, None if read_base is None
                    else lambda path: read_base(repo, path))
    findings = await asyncio.to_thread(deps.scan, dict(files), pid, agent)
    olds = {p: t for p, t in before.items() if t is not None}
    old_findings = (await asyncio.to_thread(deps.scan, olds, f"{pid}:base", agent)
                    if olds else [])
    fresh = new_findings(findings, files, old_findings, before)
    now = deps.now_ms()
    for rec in finding_records(findings, now):
        await deps.emit("guardian_finding", rec)
    verdict = scan_verdict(fresh, policy.verdict)
    await deps.emit("proposal_scanned", scanned_record(proposal, verdict, now))
    alerting = [f for f in fresh
                if severity_rank(f.severity) >= severity_rank(policy.alert_at)]
    if alerting:
        listed = "; ".join(f"{f.rule_id} ({f.cwe or 'no CWE'}) {f.file_path}:{f.line}"
                           for f in alerting[:10])
        await deps.emit("notification", notification_record(
            f"{pid}|findings", agent_id=agent, kind="proposal", priority="urgent",
            title=f"{len(alerting)} high-severity finding(s) in proposal {pid}",
            message=f"{proposal['title']}: {listed}", now_ms=now,
            link=f"/proposals/{pid}"))
    repo_files = (await asyncio.to_thread(deps.read_repo, repo)
                  if deps.read_repo is not None else None)
    outcomes = await asyncio.to_thread(
        run_tests, files, deps.run_python, policy.limits, max_tests=policy.max_tests,
        repo=repo_files, changed=changed_lines(files, before))
    summary = summarize(outcomes)
    requested, result, experimented = experiment_records(
        proposal, summary, deps.now_ms(), test_command=["python", "-I", "-S", "<per-test>"],
        timeout_ms=int(policy.limits.wall_seconds * 1000))
    for rtype, rec in (("experiment_requested", requested), ("experiment_result", result),
                       ("proposal_experimented", experimented)):
        await deps.emit(rtype, rec)
    log.info("proposals.experimented", proposal_id=pid, status=summary.status,
             tests_run=summary.tests_run, tests_failed=summary.tests_failed,
             tests_exercising=summary.tests_exercising, findings=len(findings),
             new_findings=len(fresh))
    target = proposal.get("target")
    blocking = [f for f in fresh if policy.verdict.blocks(f)]
    if not verdict["passed"] and not blocking:
        blocking = list(fresh)  # too many findings: every new one counts
    if not policy.auto_decline_blocking:
        blocking = []
    verdict_of = judge(
        summary, outcomes, experiment_id=str(result["experiment_id"]), findings=findings,
        new_findings=fresh, blocking=blocking,
        target_id=None if not target else str(target["target_id"]),
        target_check=None if not target else check_target(target, files, findings),
        auto_approve=policy.auto_approve_targeted)
    if verdict_of.approve is None or (verdict_of.approve is False
                                      and not policy.auto_decline_unproven and not blocking):
        return ProposalResult(pid, "awaiting_decision", decision.reason, findings, summary,
                              verdict_of)
    await deps.emit("proposal_decided", decided_record(
        pid, agent, approve=verdict_of.approve, decided_by="policy",
        reason=verdict_of.reason, now_ms=deps.now_ms(), evidence=verdict_of.evidence))
    return ProposalResult(pid, "approved" if verdict_of.approve else "declined",
                          decision.reason, findings, summary, verdict_of)


def _bases(proposal: Mapping[str, Any], files: Mapping[str, str],
           read_base: Callable[[str], str | None] | None) -> dict[str, str | None]:
    """The base text of each touched file (None: the change creates it): the record's
    ``code_before`` for its ``file_path``, else ``read_base``."""
    main = str(proposal["file_path"])
    out: dict[str, str | None] = {}
    for path in files:
        text = proposal.get("code_before") if path == main else None
        if text is None and read_base is not None:
            text = read_base(path)
        out[path] = None if text is None else str(text)
    return out


def level_notification(changed: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The ``notification`` for an ``agent_level_changed`` record."""
    old, new = int(changed["old_level"]), int(changed["new_level"])
    verb = "up" if new > old else "down" if new < old else "changed"
    return notification_record(
        f"{changed['event_id']}|level", agent_id=str(changed["agent_id"]), kind="level_up",
        priority="normal" if new >= old else "high",
        title=f"{changed['agent_id']} leveled {verb}: {old} → {new}",
        message=str(changed.get("reason") or ""), now_ms=now_ms,
        link=f"/agents/{changed['agent_id']}")


def decision_notification(decided: Mapping[str, Any], now_ms: int) -> dict[str, Any]:
    """The ``notification`` for a ``proposal_decided`` record (one per decision event)."""
    pid, status = str(decided["proposal_id"]), str(decided["status"])
    return notification_record(
        f"{decided['event_id']}|decided", agent_id=str(decided["agent_id"]), kind="proposal",
        priority="normal" if status == "approved" else "high",
        title=f"Proposal {pid} {status} by {decided['decided_by']}",
        message=str(decided["reason"]), now_ms=now_ms, link=f"/proposals/{pid}")
