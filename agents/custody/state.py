"""The custody view of an agent: level, XP, prestige, failure streak, Elo ratings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agents.custody.elo import initial_agent_rating
from agents.custody.items import Category, Tier, tier_for_level

__all__ = ["AgentState"]


@dataclass(frozen=True, slots=True)
class AgentState:
    """Immutable progression state of one agent.

    ``ratings`` maps a category value to the agent's Elo rating in it; a category without a
    rating starts at :func:`~agents.custody.elo.initial_agent_rating` of ``level``.
    ``fail_streak`` counted consecutive failed runs under the rule before policy custody-v1;
    demotion now follows the pooled SPRT evidence and leaves it unchanged (kept so stored
    states and comparisons stay valid; see :mod:`agents.custody.progression`).
    """

    agent_id: str
    agent_type: str
    level: int = 1
    xp: int = 0
    prestige: int = 0
    fail_streak: int = 0
    ratings: Mapping[str, float] = field(default_factory=dict)

    @property
    def tier(self) -> Tier:
        """The tier of the agent's level."""
        return tier_for_level(self.level)

    def rating(self, category: Category | str) -> float:
        """Elo rating in ``category`` (its starting value if never rated)."""
        return self.ratings.get(str(category), initial_agent_rating(self.level))
