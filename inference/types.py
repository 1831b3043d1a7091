"""Records of the inference core: request, response, and what an engine returns.

These mirror the Avro records ``inference_request`` / ``inference_response`` field for field
(snake_case, same names) so the mapping is 1:1; they do not import ``schemas``.

* :class:`InferenceRequest` is a frozen pydantic model: it validates what arrives from Kafka.
* :class:`InferenceResponse` and :class:`EngineResult` are frozen dataclasses: the package
  builds them itself. (``InferenceResponse.json`` would shadow ``BaseModel.json`` in pydantic.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "BCP47_PATTERN",
    "MAX_EMBED_INPUTS",
    "MAX_STOP_SEQUENCES",
    "EngineResult",
    "ErrorInfo",
    "InferenceRequest",
    "InferenceResponse",
    "Message",
    "Role",
]

Role = Literal["system", "user", "assistant"]

#: Most texts in one embedding request (OpenAI's own limit for ``/v1/embeddings``,
#: https://platform.openai.com/docs/api-reference/embeddings/create); the API caps lower.
MAX_EMBED_INPUTS = 2048

#: Most stop sequences in one request (OpenAI's limit for ``stop``,
#: https://platform.openai.com/docs/api-reference/chat/create).
MAX_STOP_SEQUENCES = 4

#: A simplified BCP-47 tag: language, optional script and region ("en", "fr-CA", "zh-Hant-TW").
BCP47_PATTERN = r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$"


class Message(BaseModel):
    """One chat turn: ``{"role": "system"|"user"|"assistant", "content": str}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str = Field(max_length=1_000_000)


class InferenceRequest(BaseModel):
    """A request to run one chat completion.

    ``deadline_ms`` is an absolute deadline in UTC epoch milliseconds (the time by which the
    requester needs the answer; a record that waited in Kafka past it is not served). A request
    is *deterministic* (cacheable) when ``seed`` is set or ``temperature`` is 0.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    request_id: str = Field(min_length=1, max_length=200)
    requester: str = Field(min_length=1, max_length=200)
    agent_id: str = Field(min_length=1, max_length=200)
    model_alias: str = Field(default="local", min_length=1, max_length=200)
    messages: tuple[Message, ...] = Field(
        default=(), max_length=1000,
        description="at least one, except in an embedding request (then none)")
    temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    top_p: float = Field(default=0.95, gt=0.0, le=1.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)
    max_tokens: int = Field(default=256, ge=1, le=32_768)
    json_schema: dict[str, Any] | None = Field(
        default=None, description="JSON Schema the output must validate against (fails closed)"
    )
    language: str = Field(default="en", pattern=BCP47_PATTERN, description="BCP-47 answer language")
    deadline_ms: int | None = Field(default=None, ge=0, description="UTC epoch ms")
    prefill: str = Field(
        default="", max_length=20_000,
        description="text the answer starts with (assistant prefill): the model continues it "
        "after its turn opens; the response holds the continuation only",
    )

    stream: bool = Field(
        default=False,
        description="also write the text as it is generated (inference_chunk records); the "
        "response stays the complete answer",
    )
    check_language: bool = Field(
        default=False,
        description="check the answer is in `language` (inference.language); retried once, "
        "then failed with language_mismatch",
    )
    choices: tuple[str, ...] = Field(
        default=(), max_length=64,
        description="rank these continuations of the prompt and prefill by log-likelihood "
        "instead of generating (inference.ranking; local engine only); the answer is the most "
        "likely one",
    )

    stop: tuple[str, ...] = Field(
        default=(), max_length=MAX_STOP_SEQUENCES,
        description="stop sequences (OpenAI's ``stop``, at most 4): generation ends before "
        "the first of them; the text holds what came before it",
    )

    embed_input: tuple[str, ...] = Field(
        default=(), max_length=MAX_EMBED_INPUTS,
        description="compute one embedding per text instead of generating (local engine "
        "only; mean-pooled, unit length); ``messages`` must then be empty",
    )

    @model_validator(mode="after")
    def _one_kind(self) -> InferenceRequest:
        """A chat request has messages; an embedding request has ``embed_input`` (non-empty
        texts) and no messages, ``choices`` or ``json_schema``."""
        for i, seq in enumerate(self.stop):
            if not seq or len(seq) > 200:
                raise ValueError(f"stop[{i}] must be 1-200 characters")
        if not self.embed_input:
            if not self.messages:
                raise ValueError("messages: at least one message is needed")
            return self
        if self.messages or self.choices or self.json_schema is not None or self.stream:
            raise ValueError("an embedding request (embed_input) has no messages, choices, "
                             "json_schema or stream")
        for i, text in enumerate(self.embed_input):
            if not text:
                raise ValueError(f"embed_input[{i}] is empty")
            if len(text) > 1_000_000:
                raise ValueError(f"embed_input[{i}] is over 1,000,000 characters")
        return self

    @property
    def is_embedding(self) -> bool:
        """True for an embedding request (``embed_input`` set)."""
        return bool(self.embed_input)

    @property
    def deterministic(self) -> bool:
        """True when the same request gives the same output (seed set or temperature 0)."""
        return self.seed is not None or self.temperature == 0.0


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """``{code, message}`` of a failed request; codes are listed in :mod:`inference.errors`."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class InferenceResponse:
    """The answer to one :class:`InferenceRequest`.

    Exactly one of (``text`` is not None) and (``error`` is not None) holds; ``json`` is the
    parsed and schema-validated value when the request had a ``json_schema``. ``latency_ms`` is
    wall time spent in :meth:`InferenceService.handle`, milliseconds. ``model_sha256`` is the
    GGUF file's hash on the local route, None on cloud routes. ``cost_usd`` is in US dollars.
    """

    request_id: str
    text: str | None
    json: Any
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    model_sha256: str | None
    route: str
    cost_usd: float
    cached: bool
    error: ErrorInfo | None = None
    embeddings: tuple[tuple[float, ...], ...] = ()
    """An embedding request's answer: one unit-length vector per input, in order (``text``
    is then ``""`` and ``finish_reason`` ``"embedding"``); empty otherwise."""

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``error`` as a nested dict or None), ready for the Avro writer."""
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> InferenceResponse:
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True, slots=True)
class EngineResult:
    """What one completion produced: text, why it stopped, token counts, wall time (ms);
    for a ranking (``finish_reason`` ``"choice"``) the log-probability of each choice, nats;
    for an embedding (``finish_reason`` ``"embedding"``) one unit vector per input."""

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    scores: tuple[float, ...] = ()
    embeddings: tuple[tuple[float, ...], ...] = ()
