"""The policy's verdict on a scanned and experimented proposal, and the evidence it cites.

:func:`judge` reads the experiment's per-test outcomes, guardian's scan and the target check
and returns a :class:`Judgement`: decline, approve, or leave it to an operator. Declined, with
every reason that applies:

* ``guardian``: a blocking finding the change introduced (a finding a modified file already
  had, same tool, rule and line text, does not count against the change);
* ``experiment``: a test failed, was killed, or no test was found;
* ``proves nothing``: no test executed a changed line (:mod:`agents.proposals.coverage`) —
  an experiment that exercised nothing is not evidence, whatever its status;
* ``target``: a finding fix whose rescan still shows the finding's rule in the function.

When none applies, a proposal drafted against a target (``proposal_submitted.target``) is
approved by policy when :attr:`auto_approve` is on (it lands in the scratch repository only);
any other proposal waits for an operator. The reason text and :attr:`Judgement.evidence` (the
``proposal_decided.evidence`` field, v2) cite the experiment: the tests that ran, passed and
exercised the change, the scan's verdict and counts, the target and whether it was met.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.guardian.finding import Finding
from agents.proposals.experiment import ExperimentSummary, TestOutcome

__all__ = ["Judgement", "TargetCheck", "judge"]


@dataclass(frozen=True, slots=True)
class TargetCheck:
    """A finding fix's rescan: the ``target_id``, whether it was ``met`` (none of the
    target's rules left in its function) and the ``detail`` (what is left, or "gone")."""

    target_id: str
    met: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Judgement:
    """``approve``: True (approve), False (decline) or None (an operator decides);
    ``reason`` (the decision's text), ``evidence`` (``proposal_decided.evidence``)."""

    approve: bool | None
    reason: str
    evidence: dict[str, Any]


def _names(outcomes: Sequence[TestOutcome], pred: Any) -> list[str]:
    return [o.case.name for o in outcomes if pred(o)]


def judge(summary: ExperimentSummary, outcomes: Sequence[TestOutcome], *, experiment_id: str,
          findings: Sequence[Finding], new_findings: Sequence[Finding],
          blocking: Sequence[Finding], target_id: str | None,
          target_check: TargetCheck | None, auto_approve: bool = True) -> Judgement:
    """The verdict (module doc). ``findings`` are all of the post-image's findings,
    ``new_findings`` the ones the change introduced, ``blocking`` those of them the scan
    policy blocks on; ``target_id`` the proposal's target (None: a free-form proposal) and
    ``target_check`` its rescan (None: not a finding fix)."""
    ran = _names(outcomes, lambda o: o.killed_reason != "not_run")
    passed = _names(outcomes, lambda o: o.passed)
    exercising = _names(outcomes, lambda o: o.passed and o.exercised > 0)
    rules = sorted({f.rule_id for f in blocking})
    reasons = []
    if blocking:
        reasons.append(f"guardian: blocking findings introduced ({', '.join(rules)})")
    if not summary.passed:
        reasons.append(f"experiment {summary.status}: {summary.tests_failed}/"
                       f"{summary.tests_run} tests failed"
                       + (f" ({', '.join(_names(outcomes, lambda o: not o.passed)[:5])})"
                          if summary.tests_failed else ""))
    if not exercising:
        reasons.append(f"experiment proves nothing: no passing test ran a changed line "
                       f"({len(ran)} tests ran)")
    if target_check is not None and not target_check.met:
        reasons.append(f"target not met: {target_check.detail}")
    cite = (f"tests {len(passed)}/{len(ran)} passed, {len(exercising)} exercising the change"
            + (f" ({', '.join(exercising[:5])})" if exercising else "")
            + f"; scan {'passed' if not blocking else 'failed'}: {len(findings)} findings, "
            f"{len(new_findings)} new"
            + (f"; target {target_id} {'met' if target_check.met else 'not met'}: "
               f"{target_check.detail}" if target_check is not None else ""))
    evidence = {"experiment_id": experiment_id, "experiment_status": summary.status,
                "tests_run": ran, "tests_passed": passed, "tests_exercising": exercising,
                "scan_passed": not blocking, "findings": len(findings),
                "new_findings": len(new_findings), "blocking_rules": rules,
                "target_id": target_id,
                "target_met": None if target_check is None else target_check.met}
    if reasons:
        return Judgement(False, "; ".join(reasons) + f" — {cite}", evidence)
    if target_id is not None and auto_approve:
        return Judgement(True, f"proven: {cite}", evidence)
    return Judgement(None, f"awaiting an operator: {cite}", evidence)
