"""Real agents only (issue #20 item 9): a plain `lvlup run` emits no sample; the sample of
`--demo` is labelled and its agents never join the real agents' learning cycles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rich.console import Console

import infra.run as run
from agents.learning.registry import (
    DEMO_PRODUCER,
    active_agents,
    apply_command,
    is_demo,
    register_command,
)
from infra.cli.runcmd import _print_learning_choices
from schemas.commands import BUILTIN_AGENTS
from streams.producer import Delivery
from streams.settings import Settings


def _sample() -> list[dict[str, Any]]:
    with run.SAMPLE_EVENTS.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class _Producer:
    """Records what bootstrap emits; every record is acked at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def emit(self, record_type: str, record: dict[str, Any], on_delivery: Any = None) -> None:
        self.sent.append((record_type, record))
        if on_delivery is not None:
            on_delivery(Delivery("t", 0, len(self.sent)), None)

    def flush(self, timeout_s: float = 0) -> int:
        return 0


@pytest.fixture
def empty_log(monkeypatch):
    """bootstrap over a log whose command and source topics hold ``commands`` (a list the
    test may fill)."""
    commands: list[dict[str, Any]] = []

    def read_topic(bootstrap, codec, topic, timeout_s=5.0):
        return iter([("agent_command", c) for c in commands] if "commands" in topic else [])

    monkeypatch.setattr(run, "read_topic", read_topic)
    return commands


def test_every_sample_record_is_labelled_demo():
    records = _sample()
    assert len(records) == run.sample_records() == 2000
    assert {r["producer"] for r in records} == {DEMO_PRODUCER}
    assert all(is_demo(r["agent_id"]) for r in records)
    assert not {r["agent_id"] for r in records} & {*BUILTIN_AGENTS, *run.LEGACY_SAMPLE_AGENTS}


def test_a_plain_bootstrap_emits_no_sample_record(empty_log):
    producer = _Producer()
    sent = run.bootstrap(Settings(), producer)  # type: ignore[arg-type]
    assert "demo_sample" not in sent
    assert not any(r.get("producer") == DEMO_PRODUCER or is_demo(str(r.get("agent_id", "")))
                   for _rt, r in producer.sent)
    registered = [r["agent_id"] for rt, r in producer.sent if rt == "agent_command"]
    assert registered == list(BUILTIN_AGENTS)
    # nothing but the first-start records: agents, sources, custody runs, one cycle
    assert {rt for rt, _ in producer.sent} == {"agent_command", "trusted_source_changed",
                                               "custody_test_requested",
                                               "learning_cycle_requested"}


def test_a_demo_bootstrap_emits_the_labelled_sample_once(empty_log):
    producer = _Producer()
    sent = run.bootstrap(Settings(), producer, demo=True)  # type: ignore[arg-type]
    assert sent["demo_sample"] == 2000
    demo = [r for _rt, r in producer.sent if r.get("producer") == DEMO_PRODUCER]
    assert len(demo) == 2000
    # a demo agent on the log already: the sample is not sent again
    empty_log.extend({"agent_id": r["agent_id"], "action": r["action"]}
                     for rt, r in producer.sent if rt == "agent_command")
    again = _Producer()
    assert "demo_sample" not in run.bootstrap(Settings(), again, demo=True)  # type: ignore[arg-type]
    assert not any(r.get("producer") == DEMO_PRODUCER for _rt, r in again.sent)


def test_sample_agents_never_join_the_cycle_even_with_demo():
    registry: dict[str, Any] = {}
    commands = [register_command(a, a) | {"occurred_at": 1} for a in BUILTIN_AGENTS]
    commands += [r for r in _sample() if r["type"] == "agent_command"]
    for record in commands:
        registry[record["agent_id"]] = apply_command(registry.get(record["agent_id"]), record)
    assert any(e and e["demo"] and e["status"] == "active" for e in registry.values())
    cycle = active_agents(registry.values(), overrides={}, levels={})
    assert sorted(a.agent_id for a in cycle) == sorted(BUILTIN_AGENTS)
    # asking for a demo agent by id does not bring it in either
    assert active_agents(registry.values(), overrides={}, levels={},
                         only=["demo-sandbox-1"]) == []


def test_an_agent_registered_by_the_demo_producer_is_demo_whatever_its_id():
    entry = apply_command(None, {**register_command("helper", "sandbox"),
                                 "producer": DEMO_PRODUCER})
    assert entry is not None and entry["demo"]
    assert active_agents([entry], overrides={}, levels={}) == []


def test_the_unlabelled_sample_of_earlier_versions_is_unregistered(empty_log):
    empty_log.extend([
        {"agent_id": "sandbox-1", "action": "register", "requested_by": "ops@lvlup.example"},
        {"agent_id": "imperium-1", "action": "register", "requested_by": "ops@lvlup.example"},
        {"agent_id": "imperium-1", "action": "unregister", "requested_by": "lvlup run"},
        {"agent_id": "conquest-1", "action": "register", "requested_by": "someone@else"},
    ])
    producer = _Producer()
    sent = run.bootstrap(Settings(), producer)  # type: ignore[arg-type]
    unregistered = [r["agent_id"] for rt, r in producer.sent
                    if rt == "agent_command" and r["action"] == "unregister"]
    assert unregistered == ["sandbox-1"] and sent["legacy_sample_agents_unregistered"] == 1


def test_the_summary_prints_transfers_targets_and_the_demo_line():
    summary = run.Summary(
        transfers={"guardian": {"accepted": 1, "rejected": 2,
                                "reasons": {"already_known": 1, "no_gain": 1}}},
        targeted_topics={"guardian": [("security vulnerabilities and secure coding",
                                       "target: weakness security_awareness (…)")]},
        demo_sample=2000)
    console = Console(record=True, width=200)
    _print_learning_choices(console, summary)
    out = console.export_text()
    assert "knowledge transfers during this run: 1 accepted, 2 rejected" in out
    assert "transfers to guardian: 1 accepted, 2 rejected (already_known 1, no_gain 1)" in out
    assert "topics chosen from custody weaknesses during this run: 1" in out
    assert "target: weakness security_awareness" in out
    assert "demo sample: 2000 records" in out
    plain = Console(record=True, width=200)
    _print_learning_choices(plain, run.Summary())
    assert "demo sample: none" in plain.export_text()
