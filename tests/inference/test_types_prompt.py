"""Request validation, response shape, and the messages we send (language, system merge)."""

from __future__ import annotations

import dataclasses

import pytest
from pydantic import ValidationError

from inference.prompt import build_messages, language_instruction, merge_system_into_first_user
from inference.types import InferenceRequest, InferenceResponse, Message
from tests.inference.conftest import make_request


def test_request_validates_ranges_and_language_tags():
    assert make_request(language="fr-CA").language == "fr-CA"
    for bad in (
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"max_tokens": 0},
        {"language": "french"},
        {"messages": ()},
        {"seed": -1},
    ):
        with pytest.raises(ValidationError):
            make_request(**bad)
    with pytest.raises(ValidationError):
        InferenceRequest.model_validate(
            {
                "request_id": "r",
                "requester": "x",
                "agent_id": "a",
                "messages": [{"role": "tool", "content": "x"}],
            }
        )


def test_request_is_frozen_and_deterministic_flag():
    request = make_request(temperature=0.7)
    with pytest.raises(ValidationError):
        request.temperature = 0.0  # type: ignore[misc]
    assert not request.deterministic
    assert make_request(temperature=0.7, seed=1).deterministic
    assert make_request(temperature=0.0).deterministic


def test_response_field_names_match_the_avro_record():
    names = [f.name for f in dataclasses.fields(InferenceResponse)]
    assert names == [
        "request_id",
        "text",
        "json",
        "finish_reason",
        "prompt_tokens",
        "completion_tokens",
        "latency_ms",
        "model_sha256",
        "route",
        "cost_usd",
        "cached",
        "error",
        "embeddings",
    ]
    request_names = list(InferenceRequest.model_fields)
    assert request_names == [
        "request_id",
        "requester",
        "agent_id",
        "model_alias",
        "messages",
        "temperature",
        "top_p",
        "seed",
        "max_tokens",
        "json_schema",
        "language",
        "deadline_ms",
        "prefill",
        "stream",
        "check_language",
        "choices",
        "stop",
        "embed_input",
    ]


def test_language_instruction():
    assert language_instruction("en") is None
    assert language_instruction("en-GB") is None
    assert language_instruction("fr") == "Answer in French (fr)."
    assert language_instruction("pt-BR") == "Answer in Portuguese (pt-BR)."
    assert language_instruction("tlh") == "Answer in tlh (tlh)."


def test_build_messages_adds_one_system_instruction_only_when_needed():
    assert build_messages(make_request("hi")) == [{"role": "user", "content": "hi"}]
    out = build_messages(make_request("hi", language="de", json_schema={"type": "integer"}))
    assert out[0]["role"] == "system"
    assert "German (de)" in out[0]["content"] and '{"type":"integer"}' in out[0]["content"]
    assert out[1:] == [{"role": "user", "content": "hi"}]


def test_merge_system_into_first_user():
    messages = [
        {"role": "system", "content": "S1"},
        {"role": "user", "content": "U1"},
        {"role": "assistant", "content": "A1"},
        {"role": "system", "content": "S2"},
        {"role": "user", "content": "U2"},
    ]
    assert merge_system_into_first_user(messages) == [
        {"role": "user", "content": "S1\n\nS2\n\nU1"},
        {"role": "assistant", "content": "A1"},
        {"role": "user", "content": "U2"},
    ]
    assert messages[1]["content"] == "U1"  # input untouched


def test_merge_without_user_turn_makes_one():
    merged = merge_system_into_first_user(
        [{"role": "assistant", "content": "A"}, {"role": "system", "content": "S"}]
    )
    assert merged == [{"role": "assistant", "content": "A"}, {"role": "user", "content": "S"}]


def test_message_rejects_extra_fields():
    with pytest.raises(ValidationError):
        Message.model_validate({"role": "user", "content": "x", "name": "bob"})
