"""The embedding path of the inference core without the model: request validation, the
service (local route only, safety, ledger), the dispatcher's queue, the Kafka record mapping
through the real codec."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inference.engine import EmbeddingEngine
from inference.kafka_worker import request_fields, response_record
from inference.safety import SafetyPolicy
from inference.types import EngineResult, InferenceRequest, Message
from schemas.codec import load_codec
from tests.inference.conftest import FakeEngine
from tests.inference.test_service import assert_settled, make_service

pytestmark = pytest.mark.filterwarnings("ignore:Item .* `ReadOnly` qualifier:UserWarning")


class EmbeddingFake(FakeEngine):
    """FakeEngine that also embeds: text ``t`` → the unit vector along axis ``len(t) % 3``."""

    def __init__(self) -> None:
        super().__init__()
        self.embedded: list[tuple[str, ...]] = []

    def embed(self, texts, *, timeout_s=None) -> EngineResult:
        self.embedded.append(tuple(texts))
        vectors = tuple(tuple(1.0 if i == len(t) % 3 else 0.0 for i in range(3)) for t in texts)
        return EngineResult("", "embedding", sum(len(t.split()) + 1 for t in texts), 0, 1.0,
                            embeddings=vectors)


def embed_request(*texts: str, **fields) -> InferenceRequest:
    return InferenceRequest(request_id=fields.pop("request_id", "e-1"), requester="t",
                            agent_id="apikey:k", embed_input=texts, **fields)


def test_a_request_is_either_chat_or_embedding():
    assert embed_request("a").is_embedding
    with pytest.raises(ValidationError, match="at least one message"):
        InferenceRequest(request_id="r", requester="t", agent_id="a")
    with pytest.raises(ValidationError, match="has no messages"):
        embed_request("a", messages=(Message(role="user", content="hi"),))
    with pytest.raises(ValidationError, match="has no messages"):
        embed_request("a", choices=("x",))
    with pytest.raises(ValidationError, match=r"embed_input\[1\] is empty"):
        embed_request("a", "")


def test_the_fake_is_an_embedding_engine_and_the_chat_fake_is_not():
    assert isinstance(EmbeddingFake(), EmbeddingEngine)
    assert not isinstance(FakeEngine(), EmbeddingEngine)


async def test_embedding_is_served_locally_and_settled_on_the_ledger():
    engine = EmbeddingFake()
    service, _engine, ledger = make_service(engine=engine)
    response = await service.handle(embed_request("ab", "abc d"))
    assert response.error is None
    assert response.embeddings == ((0.0, 0.0, 1.0), (0.0, 0.0, 1.0))
    assert (response.text, response.finish_reason) == ("", "embedding")
    assert (response.prompt_tokens, response.completion_tokens) == (5, 0)
    assert (response.route, response.cost_usd, response.cached) == ("local", 0.0, False)
    assert engine.embedded == [("ab", "abc d")] and engine.calls == []
    assert ledger.reconciled("e-1")
    assert_settled(ledger)


async def test_an_engine_without_embeddings_answers_route_unavailable():
    service, _engine, ledger = make_service(engine=FakeEngine())
    response = await service.handle(embed_request("hello"))
    assert response.error is not None and response.error.code == "route_unavailable"
    assert response.embeddings == ()
    assert_settled(ledger)


async def test_a_cloud_alias_is_refused_before_the_ledger():
    service, engine, ledger = make_service(engine=EmbeddingFake(), cloud=object())
    response = await service.handle(embed_request("hello", model_alias="fast"))
    assert response.error is not None and response.error.code == "invalid_request"
    assert "local model only" in response.error.message
    assert engine.embedded == [] and not ledger.knows("e-1")


async def test_input_safety_applies():
    service, engine, _ledger = make_service(engine=EmbeddingFake(),
                                            safety=SafetyPolicy(max_input_chars=10))
    response = await service.handle(embed_request("0123456", "789abc"))
    assert response.error is not None and response.error.code == "safety_blocked"
    assert engine.embedded == []


async def test_the_records_carry_inputs_and_vectors_through_the_codec():
    codec = load_codec()
    request = {"event_id": "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", "producer": "api.openai",
               "occurred_at": 1_735_772_400_000,
               "request_id": "e-7", "requester": "api.openai", "agent_id": "apikey:k",
               "model_alias": "local", "messages": [], "temperature": 0.0, "top_p": 1.0,
               "max_tokens": 1, "language": "en", "embed_input": ["one", "four"]}
    _type, decoded = codec.decode(codec.encode("inference_request", request), "latest")
    fields = request_fields(decoded)
    assert fields["embed_input"] == ("one", "four") and fields["messages"] == []
    service, _engine, _ledger = make_service(engine=EmbeddingFake())
    response = await service.handle(fields)
    record = {**response_record(response, "apikey:k", "inference.test"),
              "occurred_at": 1_735_772_400_000}
    _type, back = codec.decode(codec.encode("inference_response", record), "latest")
    assert back["embeddings"] == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert back["finish_reason"] == "embedding" and back["error"] is None
    chat = {**request, "request_id": "c-1", "embed_input": [],
            "messages": [{"role": "user", "content": "hi"}]}
    del chat["embed_input"]  # a writer that predates v4 sends no embed_input
    _type, decoded = codec.decode(codec.encode("inference_request", chat), "latest")
    assert decoded["embed_input"] == [] and "embed_input" not in request_fields(decoded)
