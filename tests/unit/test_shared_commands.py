"""One XP rule for a proposal decision (CLI and API), the built-in agents in one place, and
failpoints that never fire unless the root arms them."""

from __future__ import annotations

import pytest

from infra.chaos.failpoints import FileFailpoints, arm, failpoints_for, writer_wrapper
from schemas.commands import (
    APPROVED_XP,
    BUILTIN_AGENTS,
    decision_xp,
    proposal_decided_fields,
)
from streams.failpoints import NO_FAILPOINTS
from streams.settings import Settings


def test_decision_xp_rule():
    assert decision_xp("approved") == APPROVED_XP == 50
    assert decision_xp("approved", 0) == 0
    assert decision_xp("approved", 1000) == 1000
    assert decision_xp("declined") == decision_xp("withdrawn", 0) == 0
    for bad in (("declined", 10), ("withdrawn", 1), ("approved", -1), ("maybe", None)):
        with pytest.raises(ValueError):
            decision_xp(*bad)


def test_cli_and_api_build_the_same_decision(monkeypatch):
    """The CLI's record carries the same domain fields the API publishes."""
    from infra.cli import proposalscmd

    sent = []

    class Producer:
        def emit_sync(self, record_type, record):
            sent.append((record_type, record))
            return None

    record, _ = proposalscmd.decide(Producer(), "p-1", "guardian-1", approve=True,
                                    reason="tests pass", by="ops")
    expected = proposal_decided_fields("p-1", "guardian-1", "approved", decided_by="ops",
                                       reason="tests pass")
    assert {k: record[k] for k in expected} == expected
    assert record["xp_awarded"] == APPROVED_XP and sent[0][0] == "proposal_decided"
    with pytest.raises(proposalscmd.LvlupError):
        proposalscmd.decide(Producer(), "p-1", "guardian-1", approve=False, reason="no",
                            by="ops", xp=5)


def test_builtin_agents_are_one_list():
    from infra.bench.sample import SampleStream

    assert BUILTIN_AGENTS == ("imperium", "guardian", "sandbox", "conquest")
    assert tuple(Settings().custody.schedule_agents) == BUILTIN_AGENTS
    assert {t for _a, t in SampleStream(seed=1).agents} == set(BUILTIN_AGENTS)


def test_failpoints_are_off_unless_the_root_arms_them(tmp_path):
    assert not NO_FAILPOINTS.fire("api", "before_publish")
    settings = Settings()
    assert settings.sinks.failpoints_dir is None
    assert failpoints_for(settings) is NO_FAILPOINTS and writer_wrapper(settings) is None
    armed = settings.model_copy(update={
        "sinks": settings.sinks.model_copy(update={"failpoints_dir": tmp_path})})
    points = failpoints_for(armed)
    assert isinstance(points, FileFailpoints) and writer_wrapper(armed) is not None
    arm(tmp_path, "api", "before_publish")
    assert points.fire("api", "before_publish") and not points.fire("api", "before_publish")


def test_builtin_topics_cover_the_builtin_agents():
    from agents.learning.defaults import BUILTIN_TOPICS as LEARNING_TOPICS
    from schemas.commands import BUILTIN_TOPICS

    assert tuple(BUILTIN_TOPICS) == BUILTIN_AGENTS and LEARNING_TOPICS is BUILTIN_TOPICS
