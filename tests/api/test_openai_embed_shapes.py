"""``POST /v1/embeddings`` wire format: body validation and the answer's shape (pure)."""

from __future__ import annotations

import array
import base64
import json

import pytest

from api.openai.errors import OpenAIError
from api.openai.shapes import EmbeddingBody, embedding_body, parse_body


def _body(**fields) -> EmbeddingBody:
    return parse_body(json.dumps({"model": "local", **fields}).encode(), EmbeddingBody)


def _error(call) -> OpenAIError:
    with pytest.raises(OpenAIError) as info:
        call()
    return info.value


def test_one_string_and_a_list_are_inputs():
    assert _body(input="a cat").texts(4) == ["a cat"]
    assert _body(input=["a", "b"]).texts(4) == ["a", "b"]
    assert _body(input="x").encoding_format == "float"


@pytest.mark.parametrize(("fields", "code", "param"), [
    ({"input": []}, "invalid_value", "input"),
    ({"input": ""}, "invalid_value", "input"),
    ({"input": ["ok", ""]}, "invalid_value", "input"),
    ({"input": ["a", "b", "c", "d", "e"]}, "too_many_inputs", "input"),
])
def test_bad_inputs_are_400_with_a_code(fields, code, param):
    err = _error(lambda: _body(**fields).texts(4))
    assert (err.status, err.type, err.code, err.param) == (
        400, "invalid_request_error", code, param)


@pytest.mark.parametrize(("fields", "code"), [
    ({"input": [1, 2, 3]}, "invalid_value"),          # token ids
    ({"input": [[1, 2]]}, "invalid_value"),
    ({"input": "x", "encoding_format": "int8"}, "invalid_value"),
    ({"input": "x", "dimensions": 64}, "unsupported_parameter"),
    ({}, "missing_required_parameter"),
])
def test_bodies_refused_at_parse(fields, code):
    err = _error(lambda: _body(**fields))
    assert err.status == 400
    assert err.code == code


def _response(vectors):
    return {"request_id": "oai-1", "route": "local", "cached": False, "cost_usd": 0.0,
            "latency_ms": 3, "prompt_tokens": 7, "embeddings": vectors}


def test_answer_is_an_openai_list_in_input_order():
    body = embedding_body(_response([[0.6, 0.8], [1.0, 0.0]]), "local", "float")
    assert body["object"] == "list"
    assert body["model"] == "local"
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert {d["object"] for d in body["data"]} == {"embedding"}
    assert body["data"][1]["embedding"] == [1.0, 0.0]
    assert body["usage"] == {"prompt_tokens": 7, "total_tokens": 7}


def test_base64_is_little_endian_float32_as_the_openai_client_decodes_it():
    vector = [0.6000000238418579, -0.800000011920929, 0.0]  # float32-exact values
    body = embedding_body(_response([vector]), "local", "base64")
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str)
    decoded = array.array("f", base64.b64decode(encoded))  # the client's own decoding
    assert decoded.itemsize == 4
    assert list(decoded) == vector
