"""Streams fail closed (pure): the assembler and the server-sent events it yields; and the
official ``openai`` client raises on our error event (fed through httpx's MockTransport)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from api.openai.stream import StreamAssembler, StreamBroken, UpstreamFailed, sse_events
from inference.client import InferenceTimeout


def chunk(i, delta, stream_id="s1"):
    return ("chunk", {"request_id": "r", "stream_id": stream_id, "index": i, "delta": delta})


def response(text, error=None):
    return ("response", {"request_id": "r", "text": text, "error": error,
                         "finish_reason": "error" if error else "stop", "prompt_tokens": 3,
                         "completion_tokens": 2, "model_sha256": "ab" * 32, "route": "local",
                         "cached": False, "cost_usd": 0.0, "latency_ms": 5.0})


async def events_of(items, then: BaseException | None = None) -> AsyncIterator:
    for item in items:
        yield item
    if then is not None:
        raise then


async def run(items, then=None) -> list[str]:
    out = []
    async for raw in sse_events(events_of(items, then), chat=True, request_id="r",
                                model="local", include_usage=True):
        out.append(raw.decode())
    return out


def payloads(out):
    return [line[len("data: "):].strip() for line in out]


def test_assembler_accepts_in_order_ignores_duplicates_and_checks_the_answer():
    a = StreamAssembler()
    assert a.on_chunk(chunk(0, "Hel")[1]) == "Hel"
    assert a.on_chunk(chunk(0, "Hel")[1]) is None  # redelivered
    assert a.on_chunk(chunk(1, "lo")[1]) == "lo"
    assert a.on_response(response("Hello!")[1]) == "!"
    gap = StreamAssembler()
    gap.on_chunk(chunk(0, "a")[1])
    with pytest.raises(StreamBroken, match="missing"):
        gap.on_chunk(chunk(2, "c")[1])


def test_assembler_refuses_a_new_generation_after_text_was_sent():
    a = StreamAssembler()
    a.on_chunk(chunk(0, "one")[1])
    with pytest.raises(StreamBroken, match="served again"):
        a.on_chunk(chunk(0, "two", stream_id="s2")[1])
    b = StreamAssembler()  # nothing sent yet: the newer generation is taken
    assert b.on_chunk(chunk(3, "tail", stream_id="old")[1]) is None
    assert b.on_chunk(chunk(0, "x", stream_id="s2")[1]) == "x"


def test_assembler_refuses_an_answer_that_differs_and_an_error_answer():
    a = StreamAssembler()
    a.on_chunk(chunk(0, "Hello")[1])
    with pytest.raises(StreamBroken, match="differs"):
        a.on_response(response("Goodbye")[1])
    with pytest.raises(UpstreamFailed):
        a.on_response(response(None, {"code": "safety_blocked", "message": "x"})[1])


async def test_a_confirmed_stream_ends_with_finish_usage_and_done():
    out = payloads(await run([chunk(0, "Hel"), chunk(1, "lo"), response("Hello")]))
    assert out[-1] == "[DONE]"
    bodies = [json.loads(p) for p in out[:-1]]
    text = "".join(b["choices"][0]["delta"].get("content", "") for b in bodies if b["choices"])
    assert text == "Hello"
    assert bodies[-2]["choices"][0]["finish_reason"] == "stop"
    assert bodies[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 2,
                                   "total_tokens": 5}


@pytest.mark.parametrize("items, then, code", [
    ([chunk(0, "Hel")], InferenceTimeout("stalled"), "stream_stalled"),
    ([chunk(0, "Hel"), chunk(2, "x")], None, "stream_broken"),
    ([chunk(0, "Hel"), response(None, {"code": "safety_blocked", "message": "m"})], None,
     "content_filter"),
    ([chunk(0, "Hel"), response("Goodbye")], None, "stream_broken"),
    ([chunk(0, "Hel")], None, "stream_incomplete"),
])
async def test_a_cut_stream_ends_with_an_error_event_and_no_done(items, then, code):
    out = payloads(await run(items, then))
    assert "[DONE]" not in out
    last = json.loads(out[-1])
    assert last["error"]["code"] == code and last["error"]["message"]
    assert "type" in last["error"]
    assert not any(json.loads(p).get("choices", [{}])[0].get("finish_reason")
                   for p in out[:-1])


async def test_the_openai_client_raises_on_the_error_event():
    body = "".join(await run([chunk(0, "Hel")], InferenceTimeout("stalled"))).encode()

    def handler(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    client = openai.OpenAI(api_key="k", base_url="http://test/v1",
                           http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    seen = []
    with pytest.raises(openai.APIError, match="stalled"):
        for part in client.chat.completions.create(model="local", stream=True,
                                                   messages=[{"role": "user", "content": "x"}]):
            seen.append(part.choices[0].delta.content or "")
    assert "".join(seen) == "Hel"
