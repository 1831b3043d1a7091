"""The route table: every HTTP operation of the API, one module per domain."""

from __future__ import annotations

from api.operations import Operation
from api.routes import (
    agents,
    custody,
    custodycompare,
    events,
    imperium,
    keys,
    notifications,
    proposals,
    review,
    sources,
    system,
    tokens,
)

__all__ = ["all_operations"]


def all_operations() -> list[Operation]:
    """Every operation, in routing order (a literal path before a parameterised one)."""
    return [
        *system.operations(),
        *agents.operations(),
        *imperium.operations(),
        *sources.operations(),
        *custodycompare.operations(),
        *custody.operations(),
        *review.operations(),
        *proposals.operations(),
        *tokens.operations(),
        *notifications.operations(),
        *events.operations(),
        *keys.operations(),
    ]
