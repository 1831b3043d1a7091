"""Custody through Kafka with the real model: two runs with the same seed from the same state
repeat their item results (HumanEval answers executed in the sandbox), a restarted worker
rebuilds its states (levels, XP, streaks, Elo ratings of agent and items), and the gate's
decision flips when its threshold crosses what the two runs measured.

Each run has a log of its own (a topic prefix): after a run, the agent's and the items' Elo
ratings have moved, so the same seed on the same log plans other items (adaptive
difficulty) — the same seed repeats only from the same state."""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from pathlib import Path

import pytest

from agents.custody.gate import PositionedRun, eligible
from agents.custody.policy import load_policy, parse_policy
from agents.custody.worker import CustodyDeps, CustodyWorker, client_infer
from inference.client import InferenceClient
from inference.engine import LlamaEngine
from inference.factory import build_service, ensure_model
from inference.kafka_worker import InferenceWorker
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import delete_topics
from streams.producer import EventProducer

from .sink_support import PrefixRouter, read_log

pytestmark = [pytest.mark.integration, pytest.mark.model]

RECORD_TYPES = ["custody_test_requested", "custody_item_result", "custody_run_result",
                "agent_level_changed", "inference_request", "inference_response", "token_usage"]


@pytest.fixture(scope="module")
def engine(settings):
    ensure_model(settings)
    return LlamaEngine.from_settings(settings)


@pytest.fixture
def worlds(bootstrap):
    """Two logs (topic prefixes), one per run."""
    routers = [PrefixRouter(f"test.cus{uuid.uuid4().hex[:6]}.") for _ in range(2)]
    topics = [router.topics(bootstrap, RECORD_TYPES) for router in routers]
    yield routers, topics
    delete_topics(bootstrap, [t for ts in topics for t in ts])


MAX_TOKENS = 160
HANG_S = 900  # a guard against a hang, not a speed goal (speed lives in `lvlup bench`)
SEED = 6  # plans HumanEval/121, /23, /27 for a level-1 agent


def request(run_id: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
            "producer": "test", "schema_version": 1, "run_id": run_id, "agent_id": "guardian-7",
            "agent_type": "guardian", "category": "code_quality", "tier": "basic", "level": 1,
            "item_count": 3, "epochs": 1, "seed": SEED, "requested_by": "test"}


async def two_runs(stack, engine, routers):
    """run-a and run-b (same seed), each on its own log with a fresh worker (empty state) and
    a fresh inference service (empty response cache: answers come from the model). Returns
    the workers, their states right after their rebuild, and the elapsed seconds."""
    bs, codec, catalog = stack.kafka.bootstrap(), load_codec(), load_catalog()
    started = time.monotonic()
    workers: list[CustodyWorker] = []
    rebuilt = []
    for run_id, router in zip(("run-a", "run-b"), routers, strict=True):
        producer = EventProducer(bs, codec, router, name="agents.custody")
        inference = InferenceWorker(bs, codec, catalog, build_service(stack, engine=engine),
                                    producer, group=f"inf-{uuid.uuid4().hex[:8]}",
                                    request_topic=router.route("inference_request")[0])
        client = InferenceClient(bs, codec, catalog, producer, requester="agents.custody",
                                 response_topic=router.route("inference_response")[0])

        async def emit(record_type, record, producer=producer):
            await producer.emit_async(record_type, record)

        names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
        async with client:
            deps = CustodyDeps(infer=client_infer(client, timeout_s=120), emit=emit,
                               max_tokens=MAX_TOKENS)
            worker = CustodyWorker(bs, codec, catalog, deps, group=f"cus-{uuid.uuid4().hex[:8]}",
                                   topics=names)
            stop, ready = asyncio.Event(), asyncio.Event()
            tasks = [asyncio.create_task(inference.run(stop)),
                     asyncio.create_task(worker.run(stop, ready))]
            try:
                await asyncio.wait_for(ready.wait(), 30)
                rebuilt.append(dict(worker.states))
                await producer.emit_async("custody_test_requested", request(run_id))
                while not worker.outcomes:
                    assert time.monotonic() - started < HANG_S, "custody runs hang"
                    assert not any(t.done() for t in tasks)
                    await asyncio.sleep(0.2)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
        producer.close()
        workers.append(worker)
    return workers, rebuilt, time.monotonic() - started


def trial_results(log):
    items = [r.record for r in log if r.record_type == "custody_item_result"]
    return {run: [(r["item_id"], r["epoch"], r["score"], r["passed"], r["seed"], r["detail"])
                  for r in items if r["run_id"] == run] for run in ("run-a", "run-b")}


async def test_same_seed_repeats_and_the_gate_flips(stack, engine, worlds):
    routers, topics = worlds
    bs, codec, catalog = stack.kafka.bootstrap(), load_codec(), load_catalog()
    workers, rebuilt, elapsed = await two_runs(stack, engine, routers)
    assert rebuilt == [{}, {}]  # both runs start from the same (empty) state
    first, second = workers[0].states["guardian-7"], workers[1].states["guardian-7"]
    assert (first.level, first.xp, first.fail_streak, first.ratings) == (
        second.level, second.xp, second.fail_streak, second.ratings)

    log = read_log(bs, codec, topics[0]) + read_log(bs, codec, topics[1])
    by_run = trial_results(log)
    assert len(by_run["run-a"]) == 3 and by_run["run-a"] == by_run["run-b"]
    assert all(i.startswith("HumanEval/") for i, *_ in by_run["run-a"])
    assert all("[code_tests/1]" in detail for *_, detail in by_run["run-a"])  # sandbox-graded
    assert not any("inference failed" in detail for *_, detail in by_run["run-a"])
    usage = [r.record for r in log if r.record_type == "token_usage"]
    assert len(usage) == 6 and all(u["completion_tokens"] > 0 for u in usage)  # real answers
    responses = [r.record for r in log if r.record_type == "inference_response"]
    assert not any(r["cached"] for r in responses)  # run-b's answers were generated again

    runs = [PositionedRun(r.record, r.topic, r.partition, r.offset)
            for r in log if r.record_type == "custody_run_result"]
    assert [p.record["run_id"] for p in runs] == ["run-a", "run-b"]
    assert runs[0].record["items_passed"] == runs[1].record["items_passed"]

    # the gate on pooled evidence: a policy that requires code_quality only; its verdict is
    # Wald's SPRT on the 6 pooled trials, recomputed here from the counts (closed form)
    v1 = load_policy()
    text = (Path(__file__).parents[2] / "agents/custody/policy/v1.yaml").read_text("utf-8")
    only_code = parse_policy(text.replace("[code_quality, security_awareness]",
                                          "[code_quality]"))
    at = int(time.time() * 1000)
    measured = eligible("guardian-7", runs, at, only_code)
    assert [c["run_id"] for c in measured.cited_runs] == ["run-a", "run-b"]
    assert measured.policy_version == only_code.ref != v1.ref
    k = [int(p.record["items_passed"]) for p in runs]
    llr_a = k[0] * math.log(0.8 / 0.5) + (3 - k[0]) * math.log(0.2 / 0.5)
    a, b = math.log(0.9 / 0.05), math.log(0.1 / 0.95)
    first_verdict = "passed" if llr_a >= a else "failed" if llr_a <= b else "continue"
    ev = measured.verdicts["code_quality"]
    if first_verdict == "continue":  # run-a alone did not decide
        assert all(index == 1 for index, _ in ev.result.decisions)
    else:
        assert ev.result.decisions[0] == (0, first_verdict)
    assert measured.eligible == (ev.verdict == "passed")
    assert not eligible("guardian-7", runs, at, v1).eligible  # no security_awareness evidence
    for p in runs:  # every run records the bank's content hash and the policy
        assert len(p.record["bank_hash"]) == 64 and p.record["policy_version"] == v1.ref

    # a worker restarted on run-a's log rebuilds what the live worker had, Elo included
    names = {rt: routers[0].route(rt)[0] for rt in RECORD_TYPES}
    restarted = CustodyWorker(bs, codec, catalog, workers[0].deps, topics=names)
    await restarted.rebuild()
    after = restarted.states["guardian-7"]
    assert (after.level, after.xp, after.fail_streak, after.ratings) == (
        first.level, first.xp, first.fail_streak, first.ratings)
    assert restarted.item_ratings == workers[0].item_ratings and restarted.item_ratings
    assert restarted.applied == {"run-a"}
    print(f"custody: 2 runs x 3 HumanEval items, passed {runs[0].record['items_passed']}/3 "
          f"each, pooled {ev.summary()}, {elapsed:.1f} s", *by_run["run-a"],
          sep="\n")

