"""Counterfactual decision replay: under the recording policy nothing flips; under a
stricter one the gate verdict, the promotion and the XP change; the window filters."""

from __future__ import annotations

from agents.custody.decisions import render_replay, replay_decisions
from agents.custody.policy import load_policy

from .decision_log import AGENT, MINUTE, PROPOSAL, T0, recorded_log, strict_policy


def test_the_recording_policy_reproduces_every_recorded_decision():
    log = recorded_log()
    replay = replay_decisions(log, load_policy())
    assert len(replay.gate) == 1 and len(replay.levels) == 6
    assert not any(r.flipped for r in replay.gate + replay.levels)  # type: ignore[operator]
    assert any(r.recorded is not None for r in replay.levels)  # v1 promoted the agent
    (agent,) = replay.agents
    assert (agent.recorded_level, agent.recorded_xp) == (agent.counterfactual_level,
                                                         agent.counterfactual_xp)


def test_a_stricter_policy_flips_the_gate_the_promotions_and_the_xp():
    log = recorded_log()
    replay = replay_decisions(log, strict_policy())
    (gate,) = replay.gate
    assert (gate.proposal_id, gate.recorded, gate.counterfactual) == (PROPOSAL, True, False)
    assert "not eligible" in gate.reason and gate.flipped
    promotions = [r for r in replay.levels if r.recorded is not None]
    assert promotions and all(r.flipped and r.counterfactual is None for r in promotions)
    (agent,) = replay.agents
    assert agent.agent_id == AGENT
    assert (agent.recorded_xp, agent.counterfactual_xp) == (180, 90)  # 18 items × 10 → × 5
    assert agent.recorded_level > agent.counterfactual_level == 1
    doc = replay.to_json()
    assert doc["gate"]["flipped"][0]["proposal_id"] == PROPOSAL
    assert doc["levels"]["decisions"] == 6 and doc["policy"].startswith("strict-replay@")
    text = render_replay(replay)
    assert PROPOSAL in text and "eligible" in text and "declined" in text


def test_the_window_chooses_the_reported_decisions_not_the_fold():
    log = recorded_log()
    late = replay_decisions(log, strict_policy(), since_ms=T0 + 5 * MINUTE)
    assert [r.run_id for r in late.levels] == ["dr-run-5"] and len(late.gate) == 1
    early = replay_decisions(log, strict_policy(), until_ms=T0 + 2 * MINUTE)
    assert len(early.levels) == 2 and early.gate == []
    # the agents' outcome still folds every run
    assert late.agents == replay_decisions(log, strict_policy()).agents
