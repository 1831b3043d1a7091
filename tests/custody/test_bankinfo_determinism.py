"""Bank versions (content hash, items per category × tier, versions read back from run
results) and determinism: the same seed gives the same items, in this process and another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace

from agents.custody.bank import Bank
from agents.custody.bankinfo import UNRECORDED, bank_versions, render_bank_versions
from agents.custody.items import Category
from agents.custody.planning import plan_run
from agents.custody.state import AgentState

AGENT = AgentState("guardian-1", "guardian", level=4)


def test_content_hash_is_of_the_content_not_the_name_or_order(bank):
    assert len(bank.content_hash) == 64
    shuffled = Bank(version="renamed", items=tuple(reversed(bank.items)))
    assert shuffled.content_hash == bank.content_hash
    first = bank.items[0]
    edited = Bank(bank.version, (replace(first, prompt=first.prompt + " "), *bank.items[1:]))
    assert edited.content_hash != bank.content_hash


def test_current_bank_and_versions_recorded_by_runs(bank):
    old = "0" * 64
    runs = [
        {"event_id": "e1", "run_id": "r1", "occurred_at": 1_000, "bank_version": "2025.10.0",
         "bank_hash": old},
        {"event_id": "e1", "run_id": "r1", "occurred_at": 1_000, "bank_version": "2025.10.0",
         "bank_hash": old},  # redelivered
        {"event_id": "e2", "run_id": "r2", "occurred_at": 2_000, "bank_version": bank.version,
         "bank_hash": bank.content_hash},
        {"event_id": "e3", "run_id": "r3", "occurred_at": 500},  # a v1 record: no hash
    ]
    items = [{"run_id": "r1", "category": "security_awareness", "tier": "basic",
              "item_id": i} for i in ("sec-001", "sec-002", "sec-001")]
    current, unrecorded, older = bank_versions(bank, runs, items)
    assert current.current and current.exact and current.runs == 1
    assert current.counts == bank.counts() and current.total == len(bank.items)
    assert (unrecorded.version, unrecorded.content_hash, unrecorded.runs) == (UNRECORDED, "", 1)
    assert (older.version, older.runs, older.exact, older.first_ms) == ("2025.10.0", 1, False,
                                                                        1_000)
    assert older.counts["security_awareness"]["basic"] == 2 and older.total == 2
    text = render_bank_versions([current, older])
    assert f"bank {bank.version}  sha256 {bank.content_hash[:16]}  (current)" in text
    assert "code_quality" in text and "(drawn, lower bound)" in text


def _plan(bank, seed: int) -> list[str]:
    return [i.id for c in Category for i in plan_run(AGENT, c, 3, seed, bank)]


def test_same_seed_same_items_and_another_seed_others(bank):
    assert _plan(bank, 7) == _plan(bank, 7)
    assert _plan(bank, 7) != _plan(bank, 8)


def test_same_seed_same_items_in_another_process_with_another_hash_seed(bank):
    code = ("import json; from agents.custody.bank import load_bank;"
            "from agents.custody.items import Category; from agents.custody.planning import "
            "plan_run; from agents.custody.state import AgentState;"
            "b = load_bank(); a = AgentState('guardian-1', 'guardian', level=4);"
            "print(json.dumps([b.content_hash, [i.id for c in Category "
            "for i in plan_run(a, c, 3, 7, b)]]))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env, timeout=120)
    digest, ids = json.loads(out.stdout.strip().splitlines()[-1])
    assert digest == bank.content_hash and ids == _plan(bank, 7)
