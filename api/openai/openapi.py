"""The ``/v1`` routes in the API's OpenAPI document.

Their contract is OpenAI's (https://platform.openai.com/docs/api-reference, the ``chat``,
``completions``, ``embeddings`` and ``models`` endpoints); these entries say that, list
the parameters this front door accepts (:mod:`api.openai.shapes`) and the error shape
(:mod:`api.openai.errors`), so ``/openapi.json`` documents every served route.
"""

from __future__ import annotations

from typing import Any

__all__ = ["openai_paths"]

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["message", "type", "code"],
    "properties": {"message": {"type": "string"}, "type": {"type": "string"},
                   "param": {"type": ["string", "null"]},
                   "code": {"type": ["string", "null"]}}}}}
_SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}, {"apiKeyHeader": []}]


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"description": "OpenAI-shaped error",
                     "content": {"application/json": {"schema": _ERROR}}} for s in statuses}


def _post(summary: str, body: dict[str, Any], answer: str) -> dict[str, Any]:
    return {"post": {
        "operationId": summary.lower().replace(" ", "_"), "summary": summary,
        "tags": ["openai"], "security": _SECURITY, "x-scope": "inference",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "200": {"description": f"{answer} (JSON), or server-sent events with stream: true "
                                   "ending in `data: [DONE]` — or in an error event, never "
                                   "[DONE], when the stream was cut",
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/event-stream": {"schema": {"type": "string"}}}},
            **_errors(400, 401, 403, 404, 429, 502, 503, 504)}}}


def openai_paths() -> dict[str, Any]:
    """OpenAPI path items for ``/v1/chat/completions``, ``/v1/completions``,
    ``/v1/embeddings``, ``/v1/models`` and ``/v1/models/{model}``."""
    common = {"model": {"type": "string", "description": "local, auto, or a cloud alias"},
              "max_tokens": {"type": "integer", "minimum": 1},
              "temperature": {"type": "number", "minimum": 0, "maximum": 2},
              "top_p": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
              "seed": {"type": "integer", "minimum": 0}, "stream": {"type": "boolean"},
              "language": {"type": "string", "description": "BCP-47; checked when given"},
              "stop": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 200},
                                 {"type": "array", "maxItems": 4, "items": {
                                     "type": "string", "minLength": 1, "maxLength": 200}}],
                       "description": "the answer ends before the first of these"}}
    chat = {"type": "object", "required": ["model", "messages"], "properties": {
        **common, "messages": {"type": "array", "minItems": 1, "items": {"type": "object"}},
        "max_completion_tokens": {"type": "integer", "minimum": 1},
        "response_format": {"type": "object"}}}
    completion = {"type": "object", "required": ["model", "prompt"],
                  "properties": {**common, "prompt": {"type": "string"}}}
    model = {"type": "object", "properties": {"id": {"type": "string"},
                                              "object": {"const": "model"}}}

    def get(summary: str, schema: dict[str, Any], params: list[Any]) -> dict[str, Any]:
        return {"get": {"operationId": summary.lower().replace(" ", "_"), "summary": summary,
                        "tags": ["openai"], "security": _SECURITY, "x-scope": "inference",
                        "parameters": params,
                        "responses": {"200": {"description": "OK", "content": {
                            "application/json": {"schema": schema}}},
                            **_errors(401, 403, 404, 429)}}}

    embedding = {"type": "object", "required": ["model", "input"], "properties": {
        "model": {"type": "string", "description": "local (auto is local)"},
        "input": {"oneOf": [{"type": "string", "minLength": 1},
                            {"type": "array", "minItems": 1, "maxItems": 128,
                             "items": {"type": "string", "minLength": 1}}]},
        "encoding_format": {"enum": ["float", "base64"]}, "user": {"type": "string"}}}
    embeddings_path = _post("OpenAI embeddings", embedding, "list of embedding objects")
    embeddings_path["post"]["responses"]["200"] = {
        "description": "list of embedding objects, unit length, the model's n_embd numbers "
                       "each (float, or base64 of little-endian float32)",
        "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "/v1/chat/completions": _post("OpenAI chat completion", chat, "chat.completion"),
        "/v1/embeddings": embeddings_path,
        "/v1/completions": _post("OpenAI completion", completion, "text_completion"),
        "/v1/models": get("OpenAI models", {"type": "object", "properties": {
            "object": {"const": "list"}, "data": {"type": "array", "items": model}}}, []),
        "/v1/models/{model}": get("OpenAI model", model, [
            {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}]),
    }
