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
* :mod:`~agents.custody.progression` — XP, levels, promotion/demotion, Elo
  (:mod:`~agents.custody.elo`) on :class:`~agents.custody.state.AgentState`.
* :mod:`~agents.custody.gate` — proposal eligibility; :mod:`~agents.custody.recommend` —
  targeted runs for weak categories.

Importing builds nothing: loaders are cached functions (``load_bank``, ``read_humaneval``).
"""

from agents.custody.bank import Bank, load_bank
from agents.custody.elo import batch_update, elo_update, expected_score
from agents.custody.errors import (
    BankError,
    CustodyError,
    RunVoided,
    SandboxError,
    SandboxUnavailable,
)
from agents.custody.gate import GateDecision, GatePolicy, PositionedRun, eligible
from agents.custody.items import Category, Item, ScoreResult, Tier, tier_for_level
from agents.custody.planning import ALL, plan_run
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
from agents.custody.state import AgentState
from agents.custody.stats import wilson_interval, wilson_lower

__all__ = [
    "ALL",
    "TIER_XP",
    "AgentState",
    "Bank",
    "BankError",
    "Category",
    "CustodyError",
    "GateDecision",
    "GatePolicy",
    "Item",
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
    "Tier",
    "apply_run",
    "batch_update",
    "eligible",
    "elo_update",
    "expected_score",
    "item_result_record",
    "level_for_xp",
    "load_bank",
    "plan_run",
    "recommend",
    "run_python",
    "score",
    "summarize_run",
    "tier_for_level",
    "to_request",
    "verdict_for",
    "wilson_interval",
    "wilson_lower",
    "xp_for_results",
    "xp_to_reach",
]
