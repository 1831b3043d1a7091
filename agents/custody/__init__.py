"""Custody protocol core (issue #7): how agents are tested, graded and promoted.

Pure functions on typed records; the Faust/Kafka wiring comes later and only calls these.

* :mod:`~agents.custody.bank` — versioned test bank (YAML data + HumanEval via
  :mod:`~agents.custody.humaneval`), :mod:`~agents.custody.items` — categories, tiers, items.
* :mod:`~agents.custody.scorers` — deterministic scorers, helped by
  :mod:`~agents.custody.extract` (code/JSON/letters from answers) and
  :mod:`~agents.custody.security` (bandit).
* :mod:`~agents.custody.sandbox` — running untrusted code in bubblewrap with cgroup limits,
  seccomp and no network; refuses (``SandboxUnavailable``) rather than run unconfined.
* :mod:`~agents.custody.planning` — adaptive, reproducible item selection;
  :mod:`~agents.custody.runs` — item and run records with Wilson verdicts
  (:mod:`~agents.custody.stats`).
* :mod:`~agents.custody.policy` — the policy as versioned YAML (SPRT α/β/p0/p1, window, XP,
  level curve, gate categories); :mod:`~agents.custody.sprt` — Wald's SPRT with renewal;
  :mod:`~agents.custody.evidence` — runs pooled per (agent, category, tier) and judged.
* :mod:`~agents.custody.progression` — XP, levels, promotion/demotion on conclusive evidence,
  Elo (:mod:`~agents.custody.elo`) on :class:`~agents.custody.state.AgentState`.
* :mod:`~agents.custody.bankinfo` — bank versions and items per category × tier.
* :mod:`~agents.custody.gate` — proposal eligibility on pooled evidence;
  :mod:`~agents.custody.recommend` — targeted runs for weak categories.

Importing builds nothing: loaders are cached functions (``load_bank``, ``read_humaneval``).
"""

from agents.custody.bank import Bank, load_bank
from agents.custody.bankinfo import BankVersion, bank_versions, render_bank_versions
from agents.custody.elo import batch_update, elo_update, expected_score
from agents.custody.errors import (
    BankError,
    CustodyError,
    RunVoided,
    SandboxError,
    SandboxUnavailable,
)
from agents.custody.evidence import Evidence, pooled_evidence
from agents.custody.gate import GateDecision, PositionedRun, eligible
from agents.custody.items import Category, Item, ScoreResult, Tier, tier_for_level
from agents.custody.planning import ALL, plan_run
from agents.custody.policy import CustodyPolicy, PolicyError, load_policy
from agents.custody.progression import (
    TIER_XP,
    Progress,
    apply_run,
    level_for_xp,
    xp_for_results,
    xp_to_reach,
)
from agents.custody.recommend import Recommendation, recommend, to_request
from agents.custody.runs import (
    RunContext,
    RunSummary,
    item_result_record,
    summarize_run,
    verdict_for,
)
from agents.custody.sandbox import SandboxLimits, SandboxResult, run_python
from agents.custody.scorers import score
from agents.custody.sprt import SequentialResult, SprtParams, sequential
from agents.custody.state import AgentState
from agents.custody.stats import wilson_interval, wilson_lower

__all__ = [
    "ALL",
    "TIER_XP",
    "AgentState",
    "Bank",
    "BankError",
    "BankVersion",
    "Category",
    "CustodyError",
    "CustodyPolicy",
    "Evidence",
    "GateDecision",
    "Item",
    "PolicyError",
    "PositionedRun",
    "Progress",
    "Recommendation",
    "RunContext",
    "RunSummary",
    "RunVoided",
    "SandboxError",
    "SandboxLimits",
    "SandboxResult",
    "SandboxUnavailable",
    "ScoreResult",
    "SequentialResult",
    "SprtParams",
    "Tier",
    "apply_run",
    "bank_versions",
    "batch_update",
    "eligible",
    "elo_update",
    "expected_score",
    "item_result_record",
    "level_for_xp",
    "load_bank",
    "load_policy",
    "plan_run",
    "pooled_evidence",
    "recommend",
    "render_bank_versions",
    "run_python",
    "score",
    "sequential",
    "summarize_run",
    "tier_for_level",
    "to_request",
    "verdict_for",
    "wilson_interval",
    "wilson_lower",
    "xp_for_results",
    "xp_to_reach",
]
