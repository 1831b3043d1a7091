"""Dispatcher: one local call at a time, deadlines, back-pressure, cloud calls through a real
litellm Router with mock responses, error translation, fallback to the local engine."""

from __future__ import annotations

import asyncio
import time

import litellm
import pytest
from pydantic import SecretStr

from inference.dispatch import Dispatcher
from inference.errors import (
    DeadlineExceeded,
    EngineBusy,
    InvalidRequest,
    RouteUnavailable,
    SafetyBlocked,
    StreamInterrupted,
)
from inference.router import CloudDeployment, RouterSettings, RouteSpec, build_router_plan
from inference.structured import compile_schema
from inference.types import EngineResult
from tests.inference.conftest import FakeEngine, make_request

SETTINGS = RouterSettings(
    routes=(
        RouteSpec(
            alias="fast",
            deployments=(CloudDeployment(model="openai/gpt-4o-mini"),),
            fallbacks=("local",),
        ),
        RouteSpec(alias="strict", deployments=(CloudDeployment(model="openai/gpt-4o"),)),
    ),
    num_retries=0,
    timeout_s=5,
)
KEYS = {"openai": SecretStr("sk-test")}

# pydantic warns about litellm's own TypedDicts when litellm builds a mock response
pytestmark = pytest.mark.filterwarnings("ignore:Item .* `ReadOnly` qualifier:UserWarning")


def _plan(keys=KEYS):
    return build_router_plan(SETTINGS, keys)


class FakeCloud:
    """Records calls; answers with ``litellm.mock_completion`` or raises ``error``."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[dict] = []

    async def acompletion(self, model, messages, **kwargs):
        self.calls.append({"model": model, "messages": messages, **kwargs})
        if self.error is not None:
            raise self.error
        return litellm.mock_completion(model="gpt-4o-mini", messages=messages, mock_response="ok")


async def test_local_calls_never_overlap():
    engine = FakeEngine(delay_s=0.05)
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=None)
    route = dispatcher.resolve("local")
    results = await asyncio.gather(
        *(dispatcher.complete(make_request(request_id=f"r{i}"), route) for i in range(4))
    )
    assert engine.max_active == 1 and len(engine.calls) == 4
    assert {r.route for r in results} == {"local"}
    assert results[0].model_sha256 == FakeEngine.sha256


async def test_deadline_while_waiting_for_the_engine():
    engine = FakeEngine(delay_s=0.3)
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=None)
    route = dispatcher.resolve("local")
    first = asyncio.create_task(dispatcher.complete(make_request(), route, timeout_s=5))
    await asyncio.sleep(0.02)
    with pytest.raises(DeadlineExceeded, match="waited"):
        await dispatcher.complete(make_request(request_id="r2"), route, timeout_s=0.05)
    assert (await first).result.text == "hello"
    assert len(engine.calls) == 1


async def test_engine_deadline_answers_at_once_but_keeps_the_model_locked():
    engine = FakeEngine(delay_s=0.4)  # ignores timeout_s, like a prompt that cannot be cut
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=None)
    route = dispatcher.resolve("local")
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match="did not answer"):
        await dispatcher.complete(make_request(), route, timeout_s=0.05)
    assert time.perf_counter() - started < 0.3  # the caller is not held by the thread
    engine.delay_s = 0.0
    await dispatcher.complete(make_request(request_id="r2"), route)
    assert time.perf_counter() - started >= 0.4  # ... but the next call waited for it
    assert engine.max_active == 1 and len(engine.calls) == 2


async def test_timeout_reported_by_the_engine_propagates():
    def reply(request, grammar):
        raise DeadlineExceeded("generation stopped")

    dispatcher = Dispatcher(plan=_plan(), engine=FakeEngine(reply), cloud=None)
    with pytest.raises(DeadlineExceeded, match="generation stopped"):
        await dispatcher.complete(make_request(), dispatcher.resolve("local"), timeout_s=1)


async def test_queue_limit_raises_engine_busy():
    engine = FakeEngine(delay_s=0.2)
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=None, max_local_queue=1)
    route = dispatcher.resolve("local")
    running = asyncio.create_task(dispatcher.complete(make_request(), route))
    await asyncio.sleep(0.02)
    waiting = asyncio.create_task(dispatcher.complete(make_request(request_id="r2"), route))
    await asyncio.sleep(0.02)
    with pytest.raises(EngineBusy):
        await dispatcher.complete(make_request(request_id="r3"), route)
    await asyncio.gather(running, waiting)
    assert len(engine.calls) == 2


async def test_grammar_is_passed_to_the_local_engine():
    engine = FakeEngine()
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=None)
    compiled = compile_schema({"type": "integer"})
    await dispatcher.complete(make_request(), dispatcher.resolve("local"), structured=compiled)
    assert engine.grammars == [compiled.gbnf]


async def test_cloud_call_through_a_real_router_with_mock_response():
    from inference.router import make_router

    dispatcher = Dispatcher(
        plan=_plan(),
        engine=None,
        cloud=make_router(_plan()),
        cloud_extra={"mock_response": "bonjour"},
    )
    completion = await dispatcher.complete(
        make_request(model_alias="fast", language="fr"), dispatcher.resolve("fast"), timeout_s=5
    )
    assert completion.result.text == "bonjour"
    assert (completion.route, completion.model) == ("fast", "openai/gpt-4o-mini")
    assert completion.model_sha256 is None and completion.result.completion_tokens > 0


async def test_cloud_call_arguments():
    cloud = FakeCloud()
    dispatcher = Dispatcher(plan=_plan(), engine=None, cloud=cloud)
    request = make_request(
        model_alias="fast", seed=7, language="de", json_schema={"type": "object"}
    )
    await dispatcher.complete(
        request,
        dispatcher.resolve("fast"),
        structured=compile_schema({"type": "object"}),
        timeout_s=3,
    )
    call = cloud.calls[0]
    assert (call["model"], call["seed"], call["timeout"], call["max_tokens"]) == ("fast", 7, 3, 16)
    assert call["response_format"]["json_schema"]["schema"] == {"type": "object"}
    assert call["messages"][0]["role"] == "system" and "German" in call["messages"][0]["content"]


async def test_cloud_failure_falls_back_to_local_when_configured():
    from inference.router import make_router

    engine = FakeEngine()
    dispatcher = Dispatcher(
        plan=_plan(),
        engine=engine,
        cloud=make_router(_plan()),
        cloud_extra={"mock_response": Exception("provider down")},
    )
    completion = await dispatcher.complete(
        make_request(model_alias="fast"), dispatcher.resolve("fast")
    )
    assert (completion.route, completion.fallback_from) == ("local", "fast")
    assert len(engine.calls) == 1
    with pytest.raises(RouteUnavailable, match="strict"):
        await dispatcher.complete(make_request(model_alias="strict"), dispatcher.resolve("strict"))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (litellm.BadRequestError("bad", "gpt-4o-mini", "openai"), InvalidRequest),
        (litellm.ContextWindowExceededError("long", "gpt-4o-mini", "openai"), InvalidRequest),
        (litellm.ContentPolicyViolationError("no", "gpt-4o-mini", "openai"), SafetyBlocked),
        (litellm.RateLimitError("slow", "openai", "gpt-4o-mini"), RouteUnavailable),
        (litellm.Timeout("t", "gpt-4o-mini", "openai"), RouteUnavailable),
    ],
)
async def test_litellm_errors_are_translated(error, expected):
    dispatcher = Dispatcher(plan=_plan(), engine=None, cloud=FakeCloud(error))
    with pytest.raises(expected) as excinfo:
        await dispatcher.complete(make_request(model_alias="strict"), dispatcher.resolve("strict"))
    assert excinfo.value.__cause__ is error


def test_resolution_depends_on_what_the_worker_has():
    no_cloud = Dispatcher(plan=_plan(), engine=FakeEngine(), cloud=None)
    assert no_cloud.resolve("fast").kind == "local"  # local fallback configured
    with pytest.raises(RouteUnavailable):
        no_cloud.resolve("strict")
    no_engine = Dispatcher(plan=_plan(), engine=None, cloud=FakeCloud())
    with pytest.raises(RouteUnavailable):
        no_engine.resolve("local")
    with pytest.raises(RouteUnavailable):
        no_engine.local_route("fast")


def test_model_identity_for_cache_keys():
    dispatcher = Dispatcher(plan=_plan(), engine=FakeEngine(), cloud=FakeCloud())
    assert dispatcher.model_identity(dispatcher.resolve("local")) == "local:" + "f" * 64
    assert dispatcher.model_identity(dispatcher.resolve("fast")) == "cloud:fast"


def test_engine_result_is_what_local_completion_wraps():
    assert EngineResult("t", "stop", 1, 1, 1.0).finish_reason == "stop"


async def test_a_streamed_cloud_answer_arrives_in_pieces_through_a_real_router():
    from inference.router import make_router

    dispatcher = Dispatcher(plan=_plan(), engine=FakeEngine(), cloud=make_router(_plan()),
                            cloud_extra={"mock_response": "bonjour tout le monde"})
    pieces: list[str] = []
    completion = await dispatcher.complete(make_request(model_alias="fast"),
                                           dispatcher.resolve("fast"), timeout_s=5,
                                           on_token=pieces.append)
    assert len(pieces) > 1 and "".join(pieces) == completion.result.text
    assert completion.result.text == "bonjour tout le monde"
    assert completion.route == "fast" and completion.result.completion_tokens > 0
    assert completion.result.prompt_tokens > 0  # counted by litellm: the mock sends no usage


class CutStream:
    """A cloud whose stream yields ``pieces`` then fails with a provider error."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces

    async def acompletion(self, model, messages, **kwargs):
        assert kwargs["stream"] is True
        chunks = [litellm.ModelResponseStream(choices=[{"index": 0, "delta": {"content": p}}])
                  for p in self.pieces]

        async def stream():
            for chunk in chunks:
                yield chunk
            raise litellm.APIConnectionError("connection reset", "openai", "gpt-4o-mini")

        return stream()


async def test_a_cloud_stream_cut_mid_answer_fails_closed_without_a_second_answer():
    """After a piece was handed on, a failure is StreamInterrupted and the local fallback is
    not run (it would append a second answer behind the partial one); before any piece, the
    fallback still answers."""
    engine = FakeEngine()
    dispatcher = Dispatcher(plan=_plan(), engine=engine, cloud=CutStream(["Bon", "jour"]))
    pieces: list[str] = []
    with pytest.raises(StreamInterrupted) as excinfo:
        await dispatcher.complete(make_request(model_alias="fast"), dispatcher.resolve("fast"),
                                  on_token=pieces.append)
    assert pieces == ["Bon", "jour"] and engine.calls == []
    assert excinfo.value.code == "stream_interrupted" and excinfo.value.retryable

    early = Dispatcher(plan=_plan(), engine=engine, cloud=CutStream([]))
    completion = await early.complete(make_request(model_alias="fast"), early.resolve("fast"),
                                      on_token=pieces.append)
    assert (completion.route, completion.fallback_from) == ("local", "fast")
    assert len(engine.calls) == 1
