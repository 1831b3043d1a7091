"""Wald's sequential probability ratio test (SPRT) on Bernoulli trials, with renewal.

Source: A. Wald, "Sequential Tests of Statistical Hypotheses", Annals of Mathematical
Statistics 16(2): 117–186, 1945 (and *Sequential Analysis*, Wiley 1947, ch. 5 for the binomial
case). A trial is one custody item answered and scored: success with unknown probability
``p``. The test weighs

* H0: ``p <= p0`` (the agent does not pass items at this tier) against
* H1: ``p >= p1`` (it passes them), with error rates
  ``α = P(accept H1 | p = p0)`` (a false pass) and ``β = P(accept H0 | p = p1)`` (a false fail).

After ``k`` successes in ``n`` trials the log-likelihood ratio is::

    Λ(k, n) = k · ln(p1 / p0) + (n − k) · ln((1 − p1) / (1 − p0))

and Wald's boundaries are::

    A = ln((1 − β) / α)      Λ >= A  →  "passed"   (accept H1)
    B = ln(β / (1 − α))      Λ <= B  →  "failed"   (accept H0)
    otherwise                          "continue"  (not yet conclusive)

Wald showed the realised error rates then satisfy ``α' <= α / (1 − β)`` and
``β' <= β / (1 − α)`` whatever the stopping point; for Bernoulli trials the overshoot at the
boundary usually makes them smaller than ``α`` and ``β`` themselves (the tests compute them
exactly). Because ``Λ`` is linear in ``(k, n)`` it may be evaluated after each *batch* of
trials (a custody run) instead of after each trial: checking less often only enlarges the
overshoot. Fractional counts are allowed (a run of ``e`` epochs counts ``items/e`` trials).

**Renewal.** Evidence keeps arriving, so after a decision the statistic restarts at 0 on the
following batches (the repeated SPRT that underlies Page's CUSUM: E. S. Page, "Continuous
Inspection Schemes", Biometrika 41(1/2): 100–115, 1954). The standing verdict is the most
recent decision, or ``"continue"`` before the first one; each segment has Wald's error rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

__all__ = ["SequentialResult", "SprtParams", "Verdict", "sequential"]

Verdict = Literal["passed", "failed", "continue"]


@dataclass(frozen=True, slots=True)
class SprtParams:
    """The test's parameters: success probabilities ``p0 < p1`` (both in (0, 1)) and the
    error rates ``alpha`` (false pass) and ``beta`` (false fail), both in (0, 0.5).

    Raises :class:`ValueError` for values outside those ranges.
    """

    p0: float
    p1: float
    alpha: float
    beta: float

    def __post_init__(self) -> None:
        if not 0.0 < self.p0 < self.p1 < 1.0:
            raise ValueError(f"need 0 < p0 < p1 < 1, got p0={self.p0}, p1={self.p1}")
        for name in ("alpha", "beta"):
            value = getattr(self, name)
            if not 0.0 < value < 0.5:
                raise ValueError(f"{name} must be in (0, 0.5), got {value}")

    @property
    def upper(self) -> float:
        """Wald's A = ln((1 − β) / α): the statistic at or above it accepts H1 (passed)."""
        return math.log((1.0 - self.beta) / self.alpha)

    @property
    def lower(self) -> float:
        """Wald's B = ln(β / (1 − α)) (negative): at or below it accepts H0 (failed)."""
        return math.log(self.beta / (1.0 - self.alpha))

    @property
    def success_weight(self) -> float:
        """ln(p1 / p0) > 0: what one passed trial adds to Λ."""
        return math.log(self.p1 / self.p0)

    @property
    def failure_weight(self) -> float:
        """ln((1 − p1) / (1 − p0)) < 0: what one failed trial adds to Λ."""
        return math.log((1.0 - self.p1) / (1.0 - self.p0))

    def llr(self, passed: float, trials: float) -> float:
        """Λ for ``passed`` successes in ``trials`` trials (counts may be fractional).

        Raises :class:`ValueError` unless ``0 <= passed <= trials``.
        """
        if trials < 0 or not 0 <= passed <= trials:
            raise ValueError(f"need 0 <= passed <= trials, got {passed}/{trials}")
        return passed * self.success_weight + (trials - passed) * self.failure_weight

    def decide(self, llr: float) -> Verdict:
        """``"passed"`` if ``llr >= A``, ``"failed"`` if ``llr <= B``, else ``"continue"``."""
        if llr >= self.upper:
            return "passed"
        if llr <= self.lower:
            return "failed"
        return "continue"

    def trials_to_pass(self) -> int:
        """Fewest trials, all passed, that reach ``A`` (the shortest conclusive pass)."""
        return math.ceil(self.upper / self.success_weight - 1e-12)

    def trials_to_fail(self) -> int:
        """Fewest trials, all failed, that reach ``B`` (the shortest conclusive fail)."""
        return math.ceil(self.lower / self.failure_weight - 1e-12)


@dataclass(frozen=True, slots=True)
class SequentialResult:
    """Outcome of :func:`sequential` over a list of batches.

    ``verdict``: the most recent decision, or ``"continue"`` if none; ``decisions``: every
    decision as ``(batch index, verdict)``, in order; ``llr``, ``passed``, ``trials``: the
    statistic and counts of the segment after the last decision (the evidence still being
    gathered); ``decided_llr``, ``decided_passed``, ``decided_trials``: those of the segment
    that produced the last decision (zeros if none); ``total_passed``, ``total_trials``:
    over every batch.
    """

    verdict: Verdict
    decisions: tuple[tuple[int, Verdict], ...]
    llr: float
    passed: float
    trials: float
    decided_llr: float
    decided_passed: float
    decided_trials: float
    total_passed: float
    total_trials: float

    @property
    def last_decision_index(self) -> int | None:
        """Batch index of the last decision (None if there is none)."""
        return self.decisions[-1][0] if self.decisions else None


def sequential(batches: Iterable[tuple[float, float]], params: SprtParams) -> SequentialResult:
    """Run the SPRT with renewal (module doc) over ``batches`` of ``(passed, trials)``, in
    order, checking the boundaries after each batch. Raises :class:`ValueError` for a batch
    with ``passed`` outside ``[0, trials]``."""
    decisions: list[tuple[int, Verdict]] = []
    llr = passed = trials = 0.0
    decided = (0.0, 0.0, 0.0)
    total_passed = total_trials = 0.0
    for index, (k, n) in enumerate(batches):
        llr += params.llr(k, n)
        passed, trials = passed + k, trials + n
        total_passed, total_trials = total_passed + k, total_trials + n
        verdict = params.decide(llr)
        if verdict != "continue":
            decisions.append((index, verdict))
            decided = (llr, passed, trials)
            llr = passed = trials = 0.0
    standing: Verdict = decisions[-1][1] if decisions else "continue"
    return SequentialResult(standing, tuple(decisions), llr, passed, trials, *decided,
                            total_passed, total_trials)
