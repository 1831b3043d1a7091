"""Regression detection: has an agent's pass rate dropped below its own earlier rate?

For each (agent, category, tier), the agent's ``custody_run_result`` records are taken in
evidence order (``(occurred_at, run_id, event_id)``, a redelivered copy counted once, a run of
``e`` epochs counting ``items/e`` trials — as :mod:`agents.custody.evidence` pools them), and
split into a **baseline** and a **test segment**:

* the baseline is every trial since the start (or since the last detected regression) before
  the segment; its rate is ``p_ref = (passed + ½) / (trials + 1)`` (the Jeffreys-prior
  posterior mean: never exactly 0 or 1). The segment starts once the baseline holds
  ``baseline_trials`` trials (default 20) and ``p_ref >= min_baseline`` (0.2: below it
  there is little to lose and the test would need hundreds of trials);
* the segment is judged by **Wald's SPRT** (A. Wald, *Sequential Tests of Statistical
  Hypotheses*, Ann. Math. Statist. 16(2), 1945; :mod:`agents.custody.sprt`) on the failures:
  H0 "the pass rate is still ``p_ref``" against H1 "it fell to ``p_ref · (1 − drop)``" (drop
  0.5: the rate halved), i.e. ``SprtParams(p0 = 1 − p_ref, p1 = 1 − p_ref·(1 − drop), α, β)``
  fed ``(failed, trials)`` per run;
* **H1 accepted → regression**: a ``custody_regression`` record (and a ``notification``) is
  emitted for the run whose trials crossed the boundary; the post-regression runs then form a
  new baseline (a lasting drop is reported once, not after every run);
* **H0 accepted → no regression**: the segment's trials join the baseline and a new segment
  starts (the repeated SPRT behind Page's CUSUM: E. S. Page, "Continuous Inspection Schemes",
  Biometrika 41(1/2), 1954).

**Error rates** (given the baseline rate): α = 0.01 — a false alarm per segment while the
rate stays ``p_ref`` (Wald's bound α' ≤ α/(1 − β) = 1.1 %; ``tests/custody/test_regression.py``
computes the exact rate at ``p_ref`` 0.8 by dynamic programming); β = 0.10 — a halved rate
missed by a segment. Because segments repeat, a stable agent sees on average at least
1/α' ≈ 90 segments between false alarms. The baseline is itself an estimate from ≥ 20 trials,
so these rates hold conditionally on it; a CUSUM with an estimated in-control rate has the
same caveat (Jensen et al., "Effects of Parameter Estimation on Control Chart Properties",
J. Quality Technology 38(4), 2006). Chosen over a plain CUSUM because its boundaries carry the
same stated α, β as the promotion test, and its statistic is the one the docs already explain.

Notification: the platform's notification mechanism is the ``notification`` record on
``lvlup.notifications`` (the Postgres ``notifications`` view, ``GET /api/notifications``);
a regression emits one (kind ``custody``, priority ``high``) after its own record.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.custody.evidence import millis
from agents.custody.sprt import SprtParams

__all__ = [
    "METHOD",
    "Regression",
    "RegressionParams",
    "detect",
    "emit_regressions",
    "notification_record",
    "regression_record",
    "regressions_after",
]

METHOD = "sprt-vs-baseline-v1"
_NAMESPACE = uuid.UUID("5d0c8f1e-2b7a-4e69-9c31-8a4f6e2d7b10")


@dataclass(frozen=True, slots=True)
class RegressionParams:
    """The detector's parameters (module doc): ``baseline_trials`` (trials, > 0) before a
    test may start; ``drop`` in (0, 1): H1's rate is ``p_ref · (1 − drop)``; ``alpha``,
    ``beta`` in (0, 0.5): false alarm and miss per segment; ``min_baseline`` in [0, 1): no
    test below this baseline rate. Raises :class:`ValueError` outside those ranges."""

    baseline_trials: float = 20.0
    drop: float = 0.5
    alpha: float = 0.01
    beta: float = 0.10
    min_baseline: float = 0.2

    def __post_init__(self) -> None:
        if self.baseline_trials <= 0 or not 0.0 < self.drop < 1.0:
            raise ValueError("need baseline_trials > 0 and 0 < drop < 1")
        if not 0.0 <= self.min_baseline < 1.0:
            raise ValueError("need 0 <= min_baseline < 1")
        SprtParams(0.25, 0.75, self.alpha, self.beta)  # validates alpha and beta

    def sprt(self, p_ref: float) -> SprtParams:
        """The SPRT on failures against baseline rate ``p_ref`` in (0, 1)."""
        return SprtParams(1.0 - p_ref, 1.0 - p_ref * (1.0 - self.drop), self.alpha, self.beta)


@dataclass(frozen=True, slots=True)
class Regression:
    """A detected regression of ``agent_id`` in ``category`` at ``tier``: the ``run`` record
    whose trials crossed the boundary; the baseline (``baseline_passed`` of
    ``baseline_trials``, rate ``p_ref``, from ``baseline_runs``) and the segment
    (``passed`` of ``trials`` in ``runs``), the statistic ``llr`` (on failures) and the
    boundary ``upper``; ``alternative``: H1's pass rate."""

    agent_id: str
    category: str
    tier: str
    run: Mapping[str, Any]
    p_ref: float
    alternative: float
    baseline_passed: float
    baseline_trials: float
    baseline_runs: tuple[str, ...]
    passed: float
    trials: float
    runs: tuple[str, ...]
    llr: float
    upper: float


def _ordered(runs: Iterable[Mapping[str, Any]], agent_id: str, category: str,
             tier: str) -> list[Mapping[str, Any]]:
    first: dict[str, Mapping[str, Any]] = {}
    for rec in runs:
        if (str(rec["agent_id"]) == agent_id and str(rec["category"]) == category
                and str(rec["tier"]) == tier):
            first.setdefault(str(rec["event_id"]), rec)
    return sorted(first.values(), key=lambda r: (millis(r["occurred_at"]), str(r["run_id"]),
                                                 str(r["event_id"])))


def _batch(rec: Mapping[str, Any]) -> tuple[float, float]:
    total, passed = int(rec["items_total"]), int(rec["items_passed"])
    epochs = int(rec.get("epochs") or 1)
    if epochs < 1 or not 0 <= passed <= total:
        raise ValueError(f"run {rec['run_id']!r}: bad counts {passed}/{total}, epochs {epochs}")
    return passed / epochs, total / epochs


def detect(runs: Iterable[Mapping[str, Any]], agent_id: str, category: str, tier: str,
           params: RegressionParams | None = None) -> list[Regression]:
    """Every regression of ``agent_id`` in ``category`` at ``tier`` over ``runs``
    (``custody_run_result`` records of any agents; filtered here), in order (module doc).
    Pure. Raises :class:`ValueError` for a record with bad counts, :class:`KeyError` for a
    missing field."""
    params = params or RegressionParams()
    found: list[Regression] = []
    base_k = base_n = 0.0
    base_runs: list[str] = []
    seg: list[Mapping[str, Any]] = []
    seg_k = seg_n = llr = 0.0
    for rec in _ordered(runs, agent_id, category, tier):
        k, n = _batch(rec)
        p_ref = (base_k + 0.5) / (base_n + 1.0)
        if base_n < params.baseline_trials or p_ref < params.min_baseline:
            base_k, base_n = base_k + k, base_n + n
            base_runs.append(str(rec["run_id"]))
            continue
        sprt = params.sprt(p_ref)
        seg.append(rec)
        seg_k, seg_n = seg_k + k, seg_n + n
        llr += sprt.llr(n - k, n)
        verdict = sprt.decide(llr)
        if verdict == "passed":  # H1 on failures: the pass rate dropped
            found.append(Regression(agent_id, category, tier, rec, p_ref,
                                    p_ref * (1.0 - params.drop), base_k, base_n,
                                    tuple(base_runs), seg_k, seg_n,
                                    tuple(str(r["run_id"]) for r in seg), llr, sprt.upper))
            base_k = base_n = 0.0
            base_runs = []
        elif verdict == "failed":  # H0: still at the baseline rate; the segment joins it
            base_k, base_n = base_k + seg_k, base_n + seg_n
            base_runs += [str(r["run_id"]) for r in seg]
        else:
            continue
        seg, seg_k, seg_n, llr = [], 0.0, 0.0, 0.0
    return found


def regression_record(reg: Regression, params: RegressionParams,
                      producer: str = "agents.custody") -> dict[str, Any]:
    """The ``custody_regression`` v1 record of ``reg`` (event time: its run's; event id
    derived from run, agent, category and tier, so a recomputation repeats it)."""
    run_id = str(reg.run["run_id"])
    key = f"{run_id}\x1f{reg.agent_id}\x1f{reg.category}\x1f{reg.tier}"
    return {
        "event_id": str(uuid.uuid5(_NAMESPACE, key)),
        "occurred_at": millis(reg.run["occurred_at"]),
        "producer": producer,
        "schema_version": 1,
        "agent_id": reg.agent_id,
        "category": reg.category,
        "tier": reg.tier,
        "run_id": run_id,
        "method": METHOD,
        "baseline_rate": reg.p_ref,
        "baseline_passed": float(reg.baseline_passed),
        "baseline_trials": float(reg.baseline_trials),
        "baseline_runs": list(reg.baseline_runs),
        "recent_rate": reg.passed / reg.trials if reg.trials else 0.0,
        "recent_passed": float(reg.passed),
        "recent_trials": float(reg.trials),
        "recent_runs": list(reg.runs),
        "alternative_rate": reg.alternative,
        "llr": reg.llr,
        "threshold": reg.upper,
        "alpha": params.alpha,
        "beta": params.beta,
        "policy_version": str(reg.run.get("policy_version") or ""),
    }


def notification_record(regression: Mapping[str, Any],
                        producer: str = "agents.custody") -> dict[str, Any]:
    """The ``notification`` v2 record announcing the ``custody_regression`` ``regression``
    (id derived from the regression's event id; to ``operators``, kind ``custody``, high)."""
    nid = str(uuid.uuid5(_NAMESPACE, f"notification\x1f{regression['event_id']}"))
    r = regression
    return {
        "event_id": nid, "occurred_at": r["occurred_at"], "producer": producer,
        "schema_version": 2, "notification_id": nid, "recipient": "operators",
        "agent_id": r["agent_id"], "kind": "custody", "priority": "high", "read": False,
        "title": f"{r['agent_id']}: {r['category']}@{r['tier']} pass rate regressed"[:200],
        "message": (f"{r['recent_passed']:g}/{r['recent_trials']:g} passed in the last "
                    f"{len(r['recent_runs'])} runs ({100 * r['recent_rate']:.0f}%) against "
                    f"{100 * r['baseline_rate']:.0f}% before ({r['baseline_trials']:g} trials); "
                    f"SPRT Λ={r['llr']:.2f} >= {r['threshold']:.2f}, α={r['alpha']}, "
                    f"β={r['beta']} (run {r['run_id']})"),
        "link": None,
    }


def regressions_after(history: Iterable[Mapping[str, Any]],
                      new_runs: Sequence[Mapping[str, Any]],
                      params: RegressionParams | None = None) -> list[dict[str, Any]]:
    """The ``custody_regression`` records that ``new_runs`` (one run's run results) complete,
    judged over ``history`` (earlier run results, any agents) plus them."""
    params = params or RegressionParams()
    pool = [*history, *new_runs]
    new_ids = {str(r["run_id"]) for r in new_runs}
    out = []
    for key in sorted({(str(r["agent_id"]), str(r["category"]), str(r["tier"]))
                       for r in new_runs}):
        for reg in detect(pool, *key, params=params):
            if str(reg.run["run_id"]) in new_ids:
                out.append(regression_record(reg, params))
    return out


async def emit_regressions(emit: Callable[[str, dict[str, Any]], Awaitable[None]],
                           history: Iterable[Mapping[str, Any]],
                           new_runs: Sequence[Mapping[str, Any]],
                           params: RegressionParams | None = None) -> list[dict[str, Any]]:
    """Emit (each awaited) every regression ``new_runs`` complete and its notification;
    returns the regression records. Raises what ``emit`` raises."""
    records = regressions_after(history, new_runs, params)
    for rec in records:
        await emit("custody_regression", rec)
        await emit("notification", notification_record(rec))
    return records
