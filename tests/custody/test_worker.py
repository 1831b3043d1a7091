"""run_custody with in-memory fakes of the model: records, verdicts, XP/levels, determinism,
inference failures, and the replay fold that rebuilds states after a restart."""

from __future__ import annotations

from typing import Any

import pytest

from agents.custody.bank import Bank
from agents.custody.errors import RunVoided, SandboxUnavailable
from agents.custody.humaneval import CODE_STOP
from agents.custody.replay import fold, new_agent
from agents.custody.runs import verdict_for
from agents.custody.state import AgentState
from agents.custody.worker import CustodyDeps, run_custody
from inference.client import InferenceFailed
from tests.custody.avro import assert_valid


def request(run_id: str = "run-1", *, category: str = "knowledge_verification", n: int = 5,
            seed: int = 11, epochs: int = 1, agent: str = "imperium-1") -> dict[str, Any]:
    return {"event_id": "00000000-0000-4000-8000-000000000001", "occurred_at": 1_000,
            "producer": "test", "schema_version": 1, "run_id": run_id, "agent_id": agent,
            "agent_type": "imperium", "category": category, "tier": "basic", "level": 1,
            "item_count": n, "epochs": epochs, "seed": seed, "requested_by": "test"}


class Fake:
    """A model that answers with the item's reference when ``right(item_id)``, else junk;
    ``fail`` makes every call raise. Records every call and every emitted record."""

    def __init__(self, bank: Bank, right=lambda _id: True, fail: bool = False) -> None:
        self.by_prompt = {i.prompt: i for i in bank.items}
        self.right, self.fail = right, fail
        self.calls: list[tuple[str, str, int, int]] = []
        self.prefills: list[tuple[str, tuple[str, ...]]] = []
        self.emitted: list[tuple[str, dict[str, Any]]] = []

    async def infer(self, agent_id: str, prompt: str, max_tokens: int, seed: int,
                    prefill: str = "", *, stop: tuple[str, ...] = ()) -> str:
        self.calls.append((agent_id, prompt, max_tokens, seed))
        self.prefills.append((prefill, stop))
        assert 0 <= seed < 2**32  # what inference.types accepts
        if self.fail:
            raise TimeoutError("no response in 1 s")
        item = self.by_prompt[prompt]
        answer = item.reference or "" if self.right(item.id) else "I do not know. 0 ZZZ"
        if prefill:  # the continuation: what follows the prompt the turn was opened with
            answer = answer.removeprefix(item.params["prompt"]) + "\n```"
            return answer.split(stop[0])[0] if stop else answer
        return answer

    async def emit(self, record_type: str, record: dict[str, Any]) -> None:
        self.emitted.append((record_type, record))

    def deps(self, **kw: Any) -> CustodyDeps:
        clock = iter(range(10_000, 10_000_000, 1000))
        return CustodyDeps(infer=self.infer, emit=self.emit, now_ms=lambda: next(clock), **kw)

    def of(self, record_type: str) -> list[dict[str, Any]]:
        return [r for t, r in self.emitted if t == record_type]


def trial_view(records: list[dict[str, Any]]) -> list[tuple]:
    return [(r["item_id"], r["epoch"], r["score"], r["passed"], r["seed"], r["detail"])
            for r in records]


AGENT = AgentState("imperium-1", "imperium")


async def test_all_right_passes_promotes_and_emits_valid_records(bank):
    fake = Fake(bank)  # 7/7 is the shortest conclusive pass of custody-v1 (7 · 0.47 >= 2.89)
    out = await run_custody(request(n=7), fake.deps(), AGENT, bank)
    items, runs, levels = (fake.of("custody_item_result"), fake.of("custody_run_result"),
                           fake.of("agent_level_changed"))
    assert [t for t, _ in fake.emitted] == ["custody_item_result"] * 7 + [
        "custody_run_result", "agent_level_changed"]
    assert items == out.item_records and runs == out.run_records
    assert all(r["passed"] and r["score"] == 1.0 for r in items)
    for rt, rec in fake.emitted:
        assert_valid(rt, rec)
    (run,) = runs
    assert (run["items_total"], run["items_passed"], run["verdict"]) == (7, 7, "passed")
    assert run["xp_awarded"] >= 50 and out.progress.verdict == "passed"
    assert run["evidence_verdict"] == "passed" and run["bank_hash"] == bank.content_hash
    assert run["bank_version"] == bank.version and run["policy_version"].startswith("custody-v1@")
    assert levels[0]["cause"].startswith("knowledge_verification@basic passed: 7/7")
    assert out.state.level == 2 and out.state.xp == run["xp_awarded"]
    assert levels == [out.progress.level_changed]
    assert (levels[0]["old_level"], levels[0]["new_level"], levels[0]["reason"]) == (
        1, 2, "custody_passed")
    assert all(max_tokens > 0 and agent == "imperium-1" for agent, _, max_tokens, _ in fake.calls)


async def test_some_wrong_counted_and_verdict_follows_wilson(bank):
    wrong = {i.id for i in bank.items[::2]}
    fake = Fake(bank, right=lambda item_id: item_id not in wrong)
    out = await run_custody(request(n=6, epochs=2), fake.deps(), AGENT, bank)
    expected = sum(1 for r in out.item_records if r["item_id"] not in wrong)
    assert len(out.item_records) == 12 and len(fake.calls) == 12
    assert sum(r["passed"] for r in out.item_records) == expected
    (run,) = out.run_records
    assert run["items_passed"] == expected and run["epochs"] == 2
    assert 0 < expected < 12 and run["verdict"] == verdict_for(expected, 12)[0]
    assert [r["epoch"] for r in out.item_records[:2]] == [0, 1]
    assert out.item_records[0]["seed"] != out.item_records[1]["seed"]  # a seed per trial


async def test_same_seed_twice_gives_identical_item_results(bank):
    wrong = {i.id for i in bank.items[1::3]}
    first, second = (Fake(bank, right=lambda i: i not in wrong) for _ in range(2))
    a = await run_custody(request("run-a", n=4), first.deps(), AGENT, bank)
    b = await run_custody(request("run-b", n=4), second.deps(), AGENT, bank)
    assert [i.id for i in a.items] == [i.id for i in b.items]
    assert first.calls == second.calls  # same prompts, same max_tokens, same seeds
    assert trial_view(a.item_records) == trial_view(b.item_records)
    c = await run_custody(request("run-c", n=4, seed=12), Fake(bank).deps(), AGENT, bank)
    assert [r["seed"] for r in c.item_records] != [r["seed"] for r in a.item_records]


async def test_an_inference_outage_voids_the_run_and_emits_nothing(bank):
    fake = Fake(bank, fail=True)
    with pytest.raises(RunVoided) as caught:
        await run_custody(request(n=3), fake.deps(), AGENT, bank)
    assert caught.value.reason == "inference_unavailable"
    assert fake.emitted == [], "a void trial is never recorded as a failed one"


async def test_a_refused_sandbox_voids_the_run_and_emits_nothing(bank):
    fake = Fake(bank)

    def refuse(item, answer):
        raise SandboxUnavailable("bubblewrap (bwrap) is not installed", "no_bwrap")

    deps = fake.deps()
    deps.grade = refuse
    with pytest.raises(RunVoided) as caught:
        await run_custody(request(n=2), deps, AGENT, bank)
    assert caught.value.reason == "sandbox_unavailable" and fake.emitted == []


async def test_an_inference_error_about_the_answer_fails_the_trial(bank):
    fake = Fake(bank)

    async def blocked(agent_id, prompt, max_tokens, seed):
        raise InferenceFailed("safety_blocked", "the output failed the filter", {})

    deps = fake.deps()
    deps.infer = blocked
    out = await run_custody(request(n=2), deps, AGENT, bank)
    assert all(not r["passed"] and "safety_blocked" in r["detail"] for r in out.item_records)
    for rt, rec in fake.emitted:
        assert_valid(rt, rec)


async def test_a_bug_in_grading_propagates_instead_of_scoring_zero(bank):
    fake = Fake(bank)

    def broken(item, answer):
        raise KeyError("params")

    deps = fake.deps()
    deps.grade = broken
    with pytest.raises(KeyError):
        await run_custody(request(n=1), deps, AGENT, bank)
    assert fake.emitted == []


async def test_code_items_run_in_the_sandbox_and_max_tokens_is_capped(bank):
    fake = Fake(bank, right=lambda item_id: item_id != "HumanEval/15")
    out = await run_custody(request(category="code_quality", n=3, seed=1),
                            fake.deps(max_tokens=64), AGENT, bank)
    assert [i.id for i in out.items] == ["HumanEval/121", "HumanEval/15", "HumanEval/22"]
    passed = {r["item_id"]: r["passed"] for r in out.item_records}
    assert passed == {"HumanEval/121": True, "HumanEval/15": False, "HumanEval/22": True}
    assert {max_tokens for _, _, max_tokens, _ in fake.calls} == {64}
    # the model completes each HumanEval prompt: its turn opens with the prompt in a code block
    items = {i.id: i for i in out.items}
    assert [p for p, _ in fake.prefills] == [
        "```python\n" + items[i].params["prompt"] for i in ("HumanEval/121", "HumanEval/15",
                                                         "HumanEval/22")]
    assert {s for _, s in fake.prefills} == {CODE_STOP}


async def test_bad_requests_raise_before_anything_is_emitted(bank):
    fake = Fake(bank)
    with pytest.raises(ValueError):
        await run_custody(request(category="astrology"), fake.deps(), AGENT, bank)
    with pytest.raises(ValueError):
        await run_custody(request(n=0), fake.deps(), AGENT, bank)
    with pytest.raises(ValueError):
        await run_custody(request(agent="someone-else"), fake.deps(), AGENT, bank)
    assert fake.emitted == []


async def test_replay_fold_rebuilds_xp_levels_and_streaks(bank):
    fake = Fake(bank)
    state = AGENT
    for n, right in enumerate([True, False, True]):
        fake.right = lambda _id, ok=right: ok
        state = (await run_custody(request(f"run-{n}", seed=n), fake.deps(), state, bank)).state
    log = [(t, r) for t, r in fake.emitted if t != "custody_item_result"]
    rebuilt = fold(log + log[:1] + [("token_usage", {})])  # a redelivered copy, a stray type
    got = rebuilt.states["imperium-1"]
    assert (got.level, got.xp, got.fail_streak) == (state.level, state.xp, state.fail_streak)
    assert rebuilt.run_ids == {"run-0", "run-1", "run-2"} and rebuilt.skipped == 1
    assert new_agent("x", "custom", 12).xp == 25 * 11 * 12


async def test_replay_fold_rebuilds_elo_ratings_of_agents_and_items(bank):
    fake = Fake(bank)
    states = {"imperium-1": AGENT, "guardian-1": AgentState("guardian-1", "guardian")}
    item_ratings: dict[str, float] = {}
    plan = [("imperium-1", True), ("guardian-1", False), ("imperium-1", False),
            ("guardian-1", True)]
    clock = iter(range(10_000, 10_000_000, 1000))
    for n, (agent, right) in enumerate(plan):
        fake.right = lambda _id, ok=right: ok
        deps = CustodyDeps(infer=fake.infer, emit=fake.emit, now_ms=lambda: next(clock))
        outcome = await run_custody(request(f"run-{n}", seed=n, agent=agent), deps,
                                    states[agent], bank, item_ratings=item_ratings)
        states[agent] = outcome.state
        item_ratings.update(outcome.progress.item_ratings)
    assert states["imperium-1"].ratings and item_ratings  # results moved the ratings
    # partition order differs from processing order: item results come first, runs reversed
    items = [(t, r) for t, r in fake.emitted if t == "custody_item_result"]
    runs = [(t, r) for t, r in fake.emitted if t != "custody_item_result"]
    rebuilt = fold(items + items[:3] + runs[::-1])
    assert rebuilt.item_ratings == item_ratings
    for agent, state in states.items():
        assert rebuilt.states[agent].ratings == state.ratings
        assert rebuilt.states[agent].xp == state.xp
