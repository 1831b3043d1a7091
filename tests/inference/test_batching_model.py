"""Continuous batching on the real model (inference.batching): the same answer alone or batched,
streaming, stop sequences, deadlines, and the dispatcher letting requests run together.

Generations are kept ≤ 32 tokens (2 cores).
"""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference.dispatch import Dispatcher
from inference.engine import LlamaEngine
from inference.errors import DeadlineExceeded, InvalidRequest
from inference.router import RouterSettings, build_router_plan
from inference.types import Message
from tests.inference.conftest import make_request, model_path_for_tests

pytestmark = pytest.mark.model

PROMPTS = [
    "Name three colours.",
    "What is the capital of France?",
    "Write one line of Python that prints hello.",
    "Count from one to five.",
    "Say something about the sea.",
]


@pytest.fixture(scope="module")
def engine():
    engine = LlamaEngine(model_path_for_tests(), n_threads=2, n_ctx=512, parallel=4)
    yield engine
    engine.close()


def _req(i: int, text: str, **kw):
    return make_request(request_id=f"b{i}", messages=(Message(role="user", content=text),),
                        temperature=kw.pop("temperature", 0.0), max_tokens=kw.pop("max_tokens", 32),
                        **kw)


def test_answers_do_not_depend_on_the_batch(engine):
    """Temperature 0: each prompt alone, then all five at once (five requests on four slots,
    so one is admitted mid-run beside sequences already generating) — identical text."""
    alone = [engine.complete(_req(i, p)).text for i, p in enumerate(PROMPTS)]
    assert all(alone)
    with ThreadPoolExecutor(max_workers=len(PROMPTS)) as pool:
        together = list(pool.map(lambda ip: engine.complete(_req(*ip)).text, enumerate(PROMPTS)))
    assert together == alone
    # staggered: a request joins while another is generating
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(engine.complete, _req(0, PROMPTS[0]))
        time.sleep(0.15)
        second = pool.submit(engine.complete, _req(1, PROMPTS[1]))
        assert [first.result().text, second.result().text] == alone[:2]
    assert engine._decoder is not None and engine._decoder.stats["max_active"] >= 4


def test_streamed_pieces_concatenate_to_the_text(engine):
    pieces: list[str] = []
    threads: set[str] = set()

    def on_token(text: str) -> None:
        pieces.append(text)
        threads.add(threading.current_thread().name)

    result = engine.complete(_req(0, PROMPTS[3]), on_token=on_token)
    assert len(pieces) > 1 and "".join(pieces) == result.text
    assert result.completion_tokens >= len(pieces)
    assert threads == {threading.current_thread().name}  # the caller's thread, not the decoder's


def test_stop_sequence_cuts_and_is_not_streamed(engine):
    base = engine.complete(_req(0, PROMPTS[3])).text
    assert len(base) > 4
    stop = base[2:4]  # two characters the model writes early on
    pieces: list[str] = []
    result = engine.complete(_req(0, PROMPTS[3], stop=(stop,)), on_token=pieces.append)
    assert result.text == base[: base.find(stop)]
    assert result.finish_reason == "stop"
    assert stop not in "".join(pieces) and "".join(pieces) == result.text


def test_length_sampling_deadline_and_limits(engine):
    short = engine.complete(_req(0, PROMPTS[4], max_tokens=3))
    assert short.finish_reason == "length" and short.completion_tokens == 3
    sampled = [engine.complete(_req(0, PROMPTS[4], temperature=0.9, seed=7)).text
               for _ in range(2)]
    assert sampled[0] == sampled[1]  # seeded sampling is reproducible
    with pytest.raises(DeadlineExceeded):
        engine.complete(_req(0, PROMPTS[4], max_tokens=32), timeout_s=0.0)
    with pytest.raises(InvalidRequest):
        engine.complete(_req(0, PROMPTS[4], max_tokens=600))


def test_callback_error_ends_only_its_request(engine):
    def boom(_text: str) -> None:
        raise RuntimeError("client went away")

    with ThreadPoolExecutor(max_workers=2) as pool:
        bad = pool.submit(engine.complete, _req(0, PROMPTS[2]), on_token=boom)
        good = pool.submit(engine.complete, _req(1, PROMPTS[1]))
        with pytest.raises(RuntimeError, match="client went away"):
            bad.result()
        assert good.result().text


def test_dispatcher_runs_requests_together(engine):
    """The dispatcher's slots follow the engine's concurrency: four requests overlap."""
    plan = build_router_plan(RouterSettings())
    dispatcher = Dispatcher(plan=plan, engine=engine, cloud=None)
    route = dispatcher.resolve("local")
    assert engine._decoder is not None
    engine._decoder.stats["max_active"] = 0

    async def main() -> list[str]:
        done = await asyncio.gather(*(dispatcher.complete(_req(i, p), route)
                                      for i, p in enumerate(PROMPTS[:4])))
        return [c.result.text for c in done]

    texts = asyncio.run(main())
    assert all(texts)
    assert engine._decoder.stats["max_active"] == 4


def test_a_deadline_passing_in_the_queue_ends_the_request_there(engine):
    decoder = engine._decoder
    assert decoder is not None
    prompt = [2, 105, 2364, 107, 6974, 496, 2822, 106, 107, 105, 4368, 107]
    busy = [decoder.submit(prompt, max_tokens=24) for _ in range(decoder.slots)]
    late = decoder.submit(prompt, max_tokens=24, timeout_s=0.05)
    with pytest.raises(DeadlineExceeded, match="in the queue"):
        late.future.result(timeout=60)
    assert all(job.future.result(timeout=60).completion_tokens > 0 for job in busy)


class _Recording:
    """Delegates to llama_cpp; records the sequence ids of every multi-sequence decode batch."""

    def __init__(self, lc):  # type: ignore[no-untyped-def]
        self._lc, self.batches = lc, []

    def __getattr__(self, name):  # type: ignore[no-untyped-def]
        return getattr(self._lc, name)

    def llama_decode(self, ctx, batch):  # type: ignore[no-untyped-def]
        ids = [batch.seq_id[i][0] for i in range(batch.n_tokens)]
        if len(set(ids)) > 1:
            self.batches.append(ids)
        return self._lc.llama_decode(ctx, batch)


def test_a_decode_step_is_one_micro_batch_after_slots_are_reused(engine):
    """llama.cpp puts only consecutive increasing sequence ids of a multi-stream batch in one
    micro-batch (``split_equal``): a step over slots in another order runs as several forward
    passes (measured: 60 instead of 36 ms for four). Two waves of four requests: the second
    reuses the slots the first freed, and every step still lists them 0, 1, 2, 3."""
    engine.complete(_req(0, PROMPTS[0], max_tokens=2))  # the decoder exists
    decoder = engine._decoder
    assert decoder is not None
    recording = _Recording(decoder._lc)
    decoder._lc = recording
    try:
        prompts = [f"Count from one to fifty, wave {w}, voice {i}." for w in (1, 2)
                   for i in range(4)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda ip: engine.complete(_req(ip[0], ip[1], max_tokens=8)),
                          enumerate(prompts)))
    finally:
        decoder._lc = recording._lc
    assert len(recording.batches) >= 8
    for ids in recording.batches:
        assert ids == sorted(ids), ids
        if len(ids) == 4:
            assert ids == [0, 1, 2, 3], ids
