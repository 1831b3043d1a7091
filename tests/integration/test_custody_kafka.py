"""Custody through Kafka with the real model: two runs with the same seed repeat their item
results (HumanEval answers executed in the sandbox), a restarted worker rebuilds its states,
and the gate's decision flips when its threshold crosses what the two runs measured."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace

import pytest

from agents.custody.gate import GatePolicy, PositionedRun, eligible
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
def routed(bootstrap):
    router = PrefixRouter(f"test.cus{uuid.uuid4().hex[:6]}.")
    topics = router.topics(bootstrap, RECORD_TYPES)
    yield router, topics
    delete_topics(bootstrap, topics)


MAX_TOKENS = 160
SEED = 6  # plans HumanEval/121, /23, /27 for a level-1 agent


def request(run_id: str) -> dict:
    return {"event_id": str(uuid.uuid4()), "occurred_at": int(time.time() * 1000),
            "producer": "test", "schema_version": 1, "run_id": run_id, "agent_id": "guardian-7",
            "agent_type": "guardian", "category": "code_quality", "tier": "basic", "level": 1,
            "item_count": 3, "epochs": 1, "seed": SEED, "requested_by": "test"}


async def two_runs(stack, engine, router):
    """run-a on a worker, run-b (same seed) on a restarted worker that rebuilt its state;
    each with a fresh inference service (empty response cache). Returns the workers, their
    states right after the rebuild, and the elapsed seconds."""
    bs, codec, catalog = stack.kafka.bootstrap(), load_codec(), load_catalog()
    producer = EventProducer(bs, codec, router, name="agents.custody")

    inference_group = f"inf-{uuid.uuid4().hex[:8]}"

    def inference_worker():  # a fresh service (empty response cache): answers come from the model
        return InferenceWorker(bs, codec, catalog, build_service(stack, engine=engine), producer,
                               group=inference_group,
                               request_topic=router.route("inference_request")[0])
    client = InferenceClient(bs, codec, catalog, producer, requester="agents.custody",
                             response_topic=router.route("inference_response")[0])

    async def emit(record_type, record):
        await producer.emit_async(record_type, record)

    names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
    group = f"cus-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    workers: list[CustodyWorker] = []
    rebuilt = []
    async with client:
        deps = CustodyDeps(infer=client_infer(client, timeout_s=120), emit=emit,
                           max_tokens=MAX_TOKENS)
        # run-a on one worker; run-b (same seed) on a restarted one that rebuilt its state
        for run_id in ("run-a", "run-b"):
            worker = CustodyWorker(bs, codec, catalog, deps, group=group, topics=names)
            stop, ready = asyncio.Event(), asyncio.Event()
            tasks = [asyncio.create_task(inference_worker().run(stop)),
                     asyncio.create_task(worker.run(stop, ready))]
            try:
                await asyncio.wait_for(ready.wait(), 30)
                rebuilt.append(dict(worker.states))
                await producer.emit_async("custody_test_requested", request(run_id))
                while not worker.outcomes:
                    assert time.monotonic() - started < 170
                    assert not any(t.done() for t in tasks)
                    await asyncio.sleep(0.2)
            finally:
                stop.set()
                await asyncio.gather(*tasks)
            workers.append(worker)
    elapsed = time.monotonic() - started
    producer.close()
    return workers, rebuilt, elapsed


def trial_results(log):
    items = [r.record for r in log if r.record_type == "custody_item_result"]
    return {run: [(r["item_id"], r["epoch"], r["score"], r["passed"], r["seed"], r["detail"])
                  for r in items if r["run_id"] == run] for run in ("run-a", "run-b")}


async def test_same_seed_repeats_and_the_gate_flips(stack, engine, routed):
    router, topics = routed
    bs, codec, catalog = stack.kafka.bootstrap(), load_codec(), load_catalog()
    workers, rebuilt, elapsed = await two_runs(stack, engine, router)
    first = workers[0].states["guardian-7"]
    assert rebuilt[0] == {} and rebuilt[1]["guardian-7"].xp == first.xp
    assert (rebuilt[1]["guardian-7"].level, rebuilt[1]["guardian-7"].fail_streak) == (
        first.level, first.fail_streak)

    log = read_log(bs, codec, topics)
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

    measured = eligible("guardian-7", runs, int(time.time() * 1000),
                        GatePolicy(min_passed_runs=0, min_wilson_lower=0.0))
    assert len(measured.cited_runs) == 2
    lenient = GatePolicy(min_passed_runs=0, min_wilson_lower=measured.wilson_lower)
    strict = replace(lenient, min_wilson_lower=measured.wilson_lower + 0.01)
    at = int(time.time() * 1000)
    assert eligible("guardian-7", runs, at, lenient).eligible
    assert not eligible("guardian-7", runs, at, strict).eligible
    assert not eligible("guardian-7", runs, at, replace(lenient, min_level=2)).eligible

    names = {rt: router.route(rt)[0] for rt in RECORD_TYPES}
    restarted = CustodyWorker(bs, codec, catalog, workers[1].deps, topics=names)
    await restarted.rebuild()
    before, after = workers[1].states["guardian-7"], restarted.states["guardian-7"]
    assert (after.level, after.xp, after.fail_streak) == (before.level, before.xp,
                                                         before.fail_streak)
    assert restarted.applied == {"run-a", "run-b"}
    print(f"custody: 2 runs x 3 HumanEval items, passed {runs[0].record['items_passed']}/3 "
          f"each, Wilson lower {measured.wilson_lower:.3f}, {elapsed:.1f} s", *by_run["run-a"],
          sep="\n")
    assert elapsed < 170

