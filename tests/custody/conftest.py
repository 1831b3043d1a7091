"""Fixtures of the custody tests: the packaged bank and a builder of run records."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from agents.custody.bank import Bank, load_bank


@pytest.fixture(scope="session")
def bank() -> Bank:
    return load_bank()


@pytest.fixture
def run_record() -> Callable[..., dict[str, Any]]:
    """Factory of ``custody_run_result`` dicts; keyword arguments override the defaults."""

    def make(**overrides: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "event_id": "ev-{}-{}".format(
                overrides.get("run_id", "r1"), overrides.get("category", "code_quality")
            ),
            "occurred_at": 1_000_000,
            "producer": "agents.custody",
            "schema_version": 1,
            "run_id": "r1",
            "agent_id": "guardian-1",
            "agent_type": "guardian",
            "category": "code_quality",
            "tier": "basic",
            "level": 5,
            "items_total": 10,
            "items_passed": 9,
            "epochs": 1,
            "score": 0.9,
            "wilson_lower": 0.596,
            "verdict": "passed",
            "xp_awarded": 90,
            "seed": 1,
            "duration_ms": 1000,
        }
        record.update(overrides)
        return record

    return make
