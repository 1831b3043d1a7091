"""The inference worker serves several requests at once and commits offsets in order, on a
real broker (the service is a stand-in that the test releases request by request; the model's
batching is tested in tests/inference/test_batching_model.py)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from inference.kafka_worker import InferenceWorker
from inference.types import InferenceResponse
from schemas.catalog import load_catalog
from schemas.codec import load_codec
from streams.kafka_admin import NewTopicSpec, create_topics, delete_topics
from streams.offsets import committed_offsets
from streams.producer import EventProducer

from .sink_support import PrefixRouter, read_log

pytestmark = pytest.mark.integration


class HeldService:
    """Answers request ``r<i>`` when the test sets ``gates[i]``; ``fail`` ids raise."""

    def __init__(self, n: int, fail: frozenset[str] = frozenset()) -> None:
        self.gates = [asyncio.Event() for _ in range(n)]
        self.started: list[str] = []
        self.running = 0
        self.peak = 0
        self.fail = fail

    async def handle(self, fields: dict[str, Any], on_token: Any = None) -> InferenceResponse:
        request_id = str(fields["request_id"])
        self.started.append(request_id)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.gates[int(request_id[1:])].wait()
            if request_id in self.fail:
                raise RuntimeError(f"engine broke on {request_id}")
        finally:
            self.running -= 1
        return InferenceResponse(request_id=request_id, text="ok", json=None,
                                 finish_reason="stop", prompt_tokens=1, completion_tokens=1,
                                 latency_ms=1.0, model_sha256=None, route="local", cost_usd=0.0,
                                 cached=False)


@pytest.fixture
def one_partition(bootstrap):
    """Request topic with one partition (so offsets order all requests); response topics."""
    router = PrefixRouter(f"test.infl{uuid.uuid4().hex[:6]}.")
    request_topic = router.route("inference_request")[0]
    create_topics(bootstrap, [NewTopicSpec(request_topic, 1, 1, {})])
    topics = [request_topic, *router.topics(bootstrap, ["inference_response", "token_usage"])]
    yield router, topics
    delete_topics(bootstrap, topics)


async def _produce(producer: EventProducer, n: int) -> None:
    for i in range(n):
        await producer.emit_async("inference_request", {
            "request_id": f"r{i}", "requester": "test", "agent_id": "a", "model_alias": "local",
            "messages": [{"role": "user", "content": "hi"}], "temperature": 0.0, "top_p": 1.0,
            "seed": None, "max_tokens": 4, "json_schema": None, "language": "en",
            "deadline_ms": None, "knowledge": [], "prefill": "", "stream": False,
            "check_language": False, "choices": [], "stop": []})


async def _until(predicate: Any, timeout_s: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def _committed(bootstrap: str, group: str, topic: str) -> int:
    got = await asyncio.to_thread(committed_offsets, bootstrap, group, [(topic, 0)])
    return got.get((topic, 0), 0)


def _worker(bootstrap, router, service, producer, max_in_flight):
    return InferenceWorker(bootstrap, load_codec(), load_catalog(), service, producer,  # type: ignore[arg-type]
                           group=f"infl-{uuid.uuid4().hex[:8]}",
                           request_topic=router.route("inference_request")[0],
                           max_in_flight=max_in_flight)


async def test_four_in_flight_committed_in_order(stack, one_partition):
    router, topics = one_partition
    bootstrap = stack.kafka.bootstrap()
    producer = EventProducer(bootstrap, load_codec(), router, name="infl.test")
    service = HeldService(6)
    worker = _worker(bootstrap, router, service, producer, 4)
    stop = asyncio.Event()
    await _produce(producer, 6)
    task = asyncio.create_task(worker.run(stop))
    try:
        await _until(lambda: service.running == 4)
        assert service.started == ["r0", "r1", "r2", "r3"]  # four at once, the fifth waits
        service.gates[3].set()  # r3 finishes first: r0..r2 still run, nothing may be committed
        await _until(lambda: len(service.started) == 5)
        assert await _committed(bootstrap, worker.group, topics[0]) == 0
        service.gates[0].set()
        await _until(lambda: worker.served == 2)
        await asyncio.sleep(0.3)
        assert await _committed(bootstrap, worker.group, topics[0]) == 1  # r1, r2 still run
        for gate in service.gates:
            gate.set()
        await _until(lambda: worker.served == 6)
    finally:
        stop.set()
        await task
        producer.close()
    assert service.peak == 4
    assert await _committed(bootstrap, worker.group, topics[0]) == 6
    answered = {r.record["request_id"] for r in read_log(bootstrap, load_codec(), topics)
                if r.record_type == "inference_response"}
    assert answered == {f"r{i}" for i in range(6)}


async def test_a_failed_request_is_never_committed_past(stack, one_partition):
    """r1 fails while r2 and r3 succeed: the worker ends with the error (the supervisor restarts
    it) and the committed offset stays at r1, so a restart serves r1 again."""
    router, topics = one_partition
    bootstrap = stack.kafka.bootstrap()
    producer = EventProducer(bootstrap, load_codec(), router, name="infl.test")
    service = HeldService(4, fail=frozenset({"r1"}))
    worker = _worker(bootstrap, router, service, producer, 4)
    await _produce(producer, 4)
    task = asyncio.create_task(worker.run(asyncio.Event()))
    try:
        await _until(lambda: service.running == 4)
        for i in (0, 2, 3):
            service.gates[i].set()
        await _until(lambda: worker.served == 3)
        service.gates[1].set()
        with pytest.raises(RuntimeError, match="engine broke on r1"):
            await asyncio.wait_for(task, 30)
    finally:
        producer.close()
    assert await _committed(bootstrap, worker.group, topics[0]) == 1

    # the restarted worker gets r1 again (r2, r3 too: at-least-once; answers are idempotent)
    producer = EventProducer(bootstrap, load_codec(), router, name="infl.test")
    again = HeldService(4)
    for gate in again.gates:
        gate.set()
    restarted = InferenceWorker(bootstrap, load_codec(), load_catalog(), again,  # type: ignore[arg-type]
                                producer, group=worker.group,
                                request_topic=router.route("inference_request")[0],
                                max_in_flight=4)
    stop = asyncio.Event()
    task = asyncio.create_task(restarted.run(stop))
    try:
        await _until(lambda: restarted.served == 3)
    finally:
        stop.set()
        await task
        producer.close()
    assert again.started == ["r1", "r2", "r3"]
    assert await _committed(bootstrap, worker.group, topics[0]) == 4
