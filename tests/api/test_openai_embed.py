"""``POST /v1/embeddings`` end to end: the official ``openai`` client against a running API
(uvicorn) and a real inference worker (Gemma 3 270M); the request and its vectors are
records on real Kafka topics, the tokens a ``token_usage`` record; bad input gets
OpenAI-shaped 4xx errors."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import openai
import pytest
from pydantic import SecretStr

from api.auth import Scope, create_key
from inference.engine import EMBED_CONTEXT_TOKENS, LlamaEngine
from inference.factory import ensure_model

from .test_openai import CLOUD, Front, WorkerThread, _records, serving

pytestmark = [pytest.mark.integration, pytest.mark.model]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no network here

TEXTS = ["Kafka keeps an ordered log per partition.",
         "A consumer commits its offsets after processing.",
         "Bake the bread for forty minutes at two hundred degrees."]


@pytest.fixture(scope="module")
def front(api_env) -> Iterator[Front]:
    inference = api_env.settings.inference.model_copy(update={
        "routes": CLOUD, "api_keys": {"openai": SecretStr("sk-test")}})
    settings = api_env.settings.model_copy(update={"inference": inference})
    ensure_model(settings)
    engine = LlamaEngine.from_settings(settings)
    worker = WorkerThread(settings, api_env.router, engine)
    worker.start()
    info, token = create_key(api_env.engine, "openai-embed-test", [Scope.INFERENCE])
    front = Front("", settings, api_env, worker, token, info.key_id)
    try:
        with serving(front.app()) as url:
            front.url = url
            # the worker's group join and the embedding context's creation happen here
            front.client().embeddings.create(model="local", input="warm up")
            yield front
    finally:
        worker.close()
        engine.close()


def _norm(v) -> float:
    return math.sqrt(sum(x * x for x in v))


def _cos(a, b) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (_norm(a) * _norm(b))


def test_vectors_are_unit_length_of_the_models_size_and_on_the_log(front):
    answer = front.client().embeddings.create(model="local", input=TEXTS,
                                              encoding_format="float")
    assert answer.object == "list" and answer.model == "local"
    assert [d.index for d in answer.data] == [0, 1, 2]
    n_embd = front.worker.engine.n_embd
    assert n_embd == 640  # Gemma 3 270M's hidden size
    for item in answer.data:
        assert len(item.embedding) == n_embd
        assert _norm(item.embedding) == pytest.approx(1.0, abs=1e-5)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens > len(TEXTS)
    request_id = answer.model_extra["lvlup"]["request_id"]
    [request] = _records(front, "inference_request", request_id)
    assert request["embed_input"] == TEXTS and request["messages"] == []
    assert request["agent_id"] == f"apikey:{front.key_id}"
    [response] = _records(front, "inference_response", request_id)
    assert response["finish_reason"] == "embedding" and response["route"] == "local"
    assert [list(v) for v in response["embeddings"]] == [d.embedding for d in answer.data]
    [usage] = _records(front, "token_usage", request_id)
    assert usage["prompt_tokens"] == answer.usage.prompt_tokens
    assert usage["completion_tokens"] == 0 and usage["cost_usd"] == 0.0


def test_same_text_same_vector_different_texts_differ(front):
    client = front.client()
    # the client's default: base64 float32, decoded by the client
    first = client.embeddings.create(model="local", input=TEXTS[0]).data[0].embedding
    again = client.embeddings.create(model="local", input=[TEXTS[2], TEXTS[0]])
    assert again.data[1].embedding == first  # alone or with others: the same vector
    floats = client.embeddings.create(model="auto", input=TEXTS[0],
                                      encoding_format="float").data[0].embedding
    assert floats == first  # float and base64 carry the same float32 numbers
    kafka, bread = first, again.data[0].embedding
    offsets = client.embeddings.create(model="local", input=TEXTS[1]).data[0].embedding
    assert _cos(kafka, bread) < 0.999
    assert _cos(kafka, offsets) < 0.999
    assert _cos(kafka, offsets) > _cos(kafka, bread)  # two Kafka sentences are closer


@pytest.mark.parametrize(("kwargs", "status", "code"), [
    ({"model": "local", "input": []}, 400, "invalid_value"),
    ({"model": "local", "input": ""}, 400, "invalid_value"),
    ({"model": "local", "input": ["x"] * 129}, 400, "too_many_inputs"),
    ({"model": "text-embedding-3-small", "input": "x"}, 404, "model_not_found"),
    ({"model": "cloud-small", "input": "x"}, 400, "model_not_supported"),
    ({"model": "local", "input": "x", "dimensions": 64}, 400, "unsupported_parameter"),
])
def test_bad_input_is_an_openai_error(front, kwargs, status, code):
    with pytest.raises(openai.APIStatusError) as info:
        front.client().embeddings.create(**kwargs)
    err = info.value
    assert err.status_code == status
    assert err.code == code
    assert err.body["type"] == "invalid_request_error"


def test_input_over_the_embedding_window_is_refused_by_the_worker(front):
    long = "word " * (EMBED_CONTEXT_TOKENS + 10)
    with pytest.raises(openai.BadRequestError) as info:
        front.client().embeddings.create(model="local", input=["short", long])
    assert info.value.code == "invalid_request"
    assert "input[1] is" in info.value.message
    assert f"window is {EMBED_CONTEXT_TOKENS} tokens" in info.value.message


def test_embeddings_need_the_inference_scope(front):
    _info, token = create_key(front.env.engine, "no-inference", [Scope.READ])
    client = openai.OpenAI(api_key=token, base_url=f"{front.url}/v1", max_retries=0)
    with pytest.raises(openai.PermissionDeniedError):
        client.embeddings.create(model="local", input="x")
