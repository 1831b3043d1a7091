"""The OpenAI wire format: request bodies (validated) and response bodies (built).

Accepted (the rest of OpenAI's parameters are refused with 400 ``unsupported_parameter``
rather than silently ignored, except those listed as ignored):

* chat (``POST /v1/chat/completions``): ``model``, ``messages`` (``system``/``developer``/
  ``user``/``assistant``; content a string or a list of ``text`` parts), ``max_tokens`` /
  ``max_completion_tokens``, ``temperature``, ``top_p``, ``seed``, ``stream``,
  ``stream_options.include_usage``, ``n`` (1 only), ``response_format`` (``text`` or
  ``json_schema``), ``stop`` (a string or at most 4 strings; the answer ends before the
  first), ``language`` (this platform's extension: the BCP-47 answer language;
  when given, the answer's language is checked — retried once, then 502
  ``language_mismatch``);
  ignored: ``user``, ``metadata``, ``store``, penalties of 0, ``logprobs: false``.
* embeddings (``POST /v1/embeddings``): ``model`` (``local``, or ``auto`` which is
  ``local``: embeddings are computed by the local model only), ``input`` (a string or a list
  of non-empty strings, at most ``OpenAISettings.embedding_max_inputs``; token-id arrays are
  refused), ``encoding_format`` (``float``, default, or ``base64``: the little-endian float32
  bytes, as the ``openai`` client decodes them); ignored: ``user``. ``dimensions`` is
  refused (the model's own size is served).
* completions (``POST /v1/completions``): the same with ``prompt`` (one string, sent to the
  model as one user turn) instead of ``messages``; ``max_tokens`` defaults to 16 as OpenAI's.

:func:`chat_body` / :func:`completion_body` / :func:`chunk_body` build the answers: ids are
``chatcmpl-<request id>`` / ``cmpl-<request id>``, ``created`` in epoch seconds, ``model``
the name asked for, ``system_fingerprint`` the first 16 hex digits of the local GGUF's
SHA-256 (``route:<alias>`` for a cloud route). Each answer also carries ``lvlup``:
``{request_id, route, cached, cost_usd, latency_ms}`` (clients ignore unknown fields).
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from api.openai.errors import OpenAIError
from inference.types import BCP47_PATTERN, MAX_STOP_SEQUENCES

__all__ = ["ChatBody", "CompletionBody", "EmbeddingBody", "chat_body", "chunk_body",
           "completion_body", "embedding_body", "parse_body"]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text"]
    text: str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, refusal … carry nothing we use

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_Part]

    def text(self) -> str:
        """The content as one string (text parts joined)."""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content)


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    include_usage: bool = False


class _JsonSchema(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, description, strict

    schema_: dict[str, Any] = Field(alias="schema")


class _ResponseFormat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_schema"]
    json_schema: _JsonSchema | None = None


class _Common(BaseModel):
    """What chat and completions share."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    temperature: float = Field(default=1.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    stream: bool = False
    stream_options: _StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="one choice only")
    language: str = Field(default="en", pattern=BCP47_PATTERN)
    user: str | None = Field(default=None, max_length=256)
    metadata: dict[str, str] | None = None
    store: bool | None = None
    frequency_penalty: float = Field(default=0.0, ge=0.0, le=0.0)
    presence_penalty: float = Field(default=0.0, ge=0.0, le=0.0)
    logprobs: bool = Field(default=False, le=False)
    stop: str | list[str] | None = None

    @field_validator("stop")
    @classmethod
    def _stops(cls, value: str | list[str] | None) -> str | list[str] | None:
        """At most :data:`~inference.types.MAX_STOP_SEQUENCES` non-empty sequences."""
        seqs = [value] if isinstance(value, str) else list(value or [])
        if len(seqs) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
        if any(not seq or len(seq) > 200 for seq in seqs):
            raise ValueError("each stop sequence must be 1-200 characters")
        return value

    def stop_sequences(self) -> list[str]:
        """``stop`` as a list (a string is one sequence; none: empty)."""
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    def include_usage(self) -> bool:
        """``stream_options.include_usage``."""
        return bool(self.stream_options and self.stream_options.include_usage)


class ChatBody(_Common):
    """A ``POST /v1/chat/completions`` body."""

    messages: list[_Message] = Field(min_length=1, max_length=1000)
    max_tokens: int | None = Field(default=None, ge=1, le=32_768)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=32_768)
    response_format: _ResponseFormat | None = None

    def budget_tokens(self, default: int) -> int:
        """``max_completion_tokens``, else ``max_tokens``, else ``default``."""
        return self.max_completion_tokens or self.max_tokens or default

    def chat(self) -> list[dict[str, str]]:
        """The messages as ``{role, content}`` (``developer`` is a system turn)."""
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()}
                for m in self.messages]

    def output_schema(self) -> dict[str, Any] | None:
        """The JSON schema of ``response_format`` (None for text)."""
        rf = self.response_format
        if rf is None or rf.type == "text":
            return None
        if rf.json_schema is None:
            raise OpenAIError(400, "response_format json_schema needs a json_schema object",
                              code="invalid_value", param="response_format")
        return rf.json_schema.schema_


class CompletionBody(_Common):
    """A ``POST /v1/completions`` body."""

    prompt: str = Field(min_length=1, max_length=1_000_000)
    max_tokens: int = Field(default=16, ge=1, le=32_768)

    @field_validator("prompt", mode="before")
    @classmethod
    def _one_prompt(cls, value: Any) -> Any:
        if isinstance(value, list):
            if len(value) == 1 and isinstance(value[0], str):
                return value[0]
            raise ValueError("only one prompt string per request")
        return value


class EmbeddingBody(BaseModel):
    """A ``POST /v1/embeddings`` body; :meth:`texts` checks the inputs against a cap."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=64)
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"
    user: str | None = Field(default=None, max_length=256)

    @field_validator("input", mode="before")
    @classmethod
    def _strings_only(cls, value: Any) -> Any:
        if isinstance(value, list) and value and not all(isinstance(v, str) for v in value):
            raise ValueError("token-id inputs are not supported: send strings")
        return value

    def texts(self, max_inputs: int) -> list[str]:
        """The inputs as a list. Raises :class:`OpenAIError` 400 (``param`` ``input``):
        ``invalid_value`` for no input or an empty string, ``too_many_inputs`` over
        ``max_inputs``."""
        texts = [self.input] if isinstance(self.input, str) else list(self.input)
        if not texts:
            raise OpenAIError(400, "input must not be empty", code="invalid_value",
                              param="input")
        if len(texts) > max_inputs:
            raise OpenAIError(400, f"input has {len(texts)} items; at most {max_inputs} per "
                              "request", code="too_many_inputs", param="input")
        for i, text in enumerate(texts):
            if not text:
                raise OpenAIError(400, f"input[{i}] is an empty string", code="invalid_value",
                                  param="input")
        return texts


_Body = TypeVar("_Body", bound=BaseModel)


def parse_body(raw: bytes, model: type[_Body]) -> _Body:
    """``raw`` as ``model``. Raises :class:`OpenAIError` 400 with ``param`` set: code
    ``invalid_json``, ``unsupported_parameter`` (an unknown field), ``missing_required_
    parameter`` or ``invalid_value``."""
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise OpenAIError(400, f"the body is not JSON: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise OpenAIError(400, "the body must be a JSON object", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(p) for p in first["loc"]) or None
        kind = first["type"]
        code = {"extra_forbidden": "unsupported_parameter",
                "missing": "missing_required_parameter"}.get(kind, "invalid_value")
        message = (f"unsupported parameter {param!r}" if code == "unsupported_parameter"
                   else f"{param}: {first['msg']}")
        raise OpenAIError(400, message, code=code, param=param) from None


def _fingerprint(response: dict[str, Any]) -> str:
    sha = str(response.get("model_sha256") or "")
    return f"fp_{sha[:16]}" if sha else f"route:{response.get('route') or 'none'}"


def _usage(response: dict[str, Any]) -> dict[str, int]:
    prompt, completion = int(response["prompt_tokens"]), int(response["completion_tokens"])
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}


def _extension(response: dict[str, Any]) -> dict[str, Any]:
    return {"request_id": response["request_id"], "route": response.get("route"),
            "cached": bool(response.get("cached")), "cost_usd": response.get("cost_usd"),
            "latency_ms": response.get("latency_ms")}


def chat_body(response: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """A ``chat.completion`` object from a successful ``inference_response`` record."""
    return {
        "id": f"chatcmpl-{response['request_id']}", "object": "chat.completion",
        "created": created, "model": model, "system_fingerprint": _fingerprint(response),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": response["text"],
                                             "refusal": None},
                     "logprobs": None, "finish_reason": response["finish_reason"]}],
        "usage": _usage(response), "lvlup": _extension(response),
    }


def completion_body(response: dict[str, Any], model: str, created: int) -> dict[str, Any]:
    """A ``text_completion`` object from a successful ``inference_response`` record."""
    return {
        "id": f"cmpl-{response['request_id']}", "object": "text_completion",
        "created": created, "model": model, "system_fingerprint": _fingerprint(response),
        "choices": [{"index": 0, "text": response["text"], "logprobs": None,
                     "finish_reason": response["finish_reason"]}],
        "usage": _usage(response), "lvlup": _extension(response),
    }


def chunk_body(*, chat: bool, request_id: str, model: str, created: int,
               delta: str | None = None, role: bool = False, finish: str | None = None,
               response: dict[str, Any] | None = None, usage_only: bool = False,
               ) -> dict[str, Any]:
    """One streamed object: ``chat.completion.chunk`` or ``text_completion``.

    ``delta`` text (and ``role`` on the first chat chunk), or the last chunk with ``finish``;
    ``usage_only`` gives the usage chunk of ``stream_options.include_usage`` (no choices).
    """
    body: dict[str, Any] = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-{request_id}",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created, "model": model,
    }
    if response is not None:
        body["system_fingerprint"] = _fingerprint(response)
    if usage_only:
        assert response is not None
        body.update(choices=[], usage=_usage(response), lvlup=_extension(response))
        return body
    if chat:
        piece: dict[str, Any] = {} if delta is None else {"content": delta}
        if role:
            piece["role"] = "assistant"
        choice: dict[str, Any] = {"index": 0, "delta": piece, "logprobs": None,
                                  "finish_reason": finish}
    else:
        choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
    body["choices"] = [choice]
    return body


def _encoded(vector: list[float], encoding_format: str) -> list[float] | str:
    """``vector`` as OpenAI sends it: floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
    return vector


def embedding_body(response: dict[str, Any], model: str, encoding_format: str,
                   ) -> dict[str, Any]:
    """The ``list`` of ``embedding`` objects from a successful ``inference_response``
    (``embeddings``: one vector per input, in order); ``usage`` counts the input tokens
    evaluated (``total_tokens`` = ``prompt_tokens``)."""
    prompt = int(response["prompt_tokens"])
    return {
        "object": "list", "model": model,
        "data": [{"object": "embedding", "index": i,
                  "embedding": _encoded(list(vector), encoding_format)}
                 for i, vector in enumerate(response.get("embeddings") or ())],
        "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        "lvlup": _extension(response),
    }
