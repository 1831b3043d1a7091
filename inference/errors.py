"""Errors of the ``inference`` package.

Hierarchy::

    InferenceError                  base; every error carries a stable ``code`` and ``retryable``
    ├── RetryableInferenceError     transient: the same request may succeed later
    │   ├── EngineBusy              "engine_busy"        the local model's queue is full
    │   ├── DeadlineExceeded        "deadline_exceeded"  the request's deadline passed
    │   └── RouteUnavailable        "route_unavailable"  no deployment of the route answered
    │       └── StreamInterrupted   "stream_interrupted" a cloud stream failed after its first
    │                                                    piece (no fallback may follow it)
    └── FinalInferenceError         retrying the same request gives the same answer
        ├── InvalidRequest          "invalid_request"    malformed request, unknown alias, …
        ├── StructuredOutputError   "schema_unsupported" | "invalid_json" | "schema_violation"
        │                           | "truncated"
        ├── BudgetExceeded          "budget_exceeded"    daily cost budget spent, policy "reject"
        ├── SafetyBlocked           "safety_blocked"     the input or output failed the filter
        ├── LanguageMismatch        "language_mismatch"  the answer is not in the language asked
        ├── PricingUnknown          "pricing_unknown"    no price for a cloud model
        └── ModelLoadError          "model_unavailable"  the GGUF file cannot be loaded

``code`` is what an :class:`~inference.types.InferenceResponse` carries in ``error.code``;
:data:`RETRYABLE_CODES` lets a consumer of responses tell the two branches apart without
importing the classes. Third-party errors (llama-cpp-python, litellm/openai, jsonschema) are
translated at the boundary with ``raise … from exc``.

Modelled on ``httpx/_exceptions.py`` (tree at the top) and ``arroyo/errors.py`` (retryable vs
poison separated).
"""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = [
    "RETRYABLE_CODES",
    "BudgetExceeded",
    "DeadlineExceeded",
    "EngineBusy",
    "FinalInferenceError",
    "InferenceError",
    "InvalidRequest",
    "LanguageMismatch",
    "ModelLoadError",
    "PricingUnknown",
    "RetryableInferenceError",
    "RouteUnavailable",
    "StreamInterrupted",
    "SafetyBlocked",
    "StructuredErrorCode",
    "StructuredOutputError",
]


class InferenceError(Exception):
    """Base of every error raised by this package; ``str(err)`` is a one-line message."""

    code: ClassVar[str] = "inference_error"
    retryable: ClassVar[bool] = False

    @property
    def error_code(self) -> str:
        """The code reported in a response (instances may refine the class ``code``)."""
        return self.code


class RetryableInferenceError(InferenceError):
    """A transient failure: the same request, sent again later, may succeed."""

    retryable = True


class FinalInferenceError(InferenceError):
    """A failure that retrying the same request cannot fix; the requester gets an error."""


class EngineBusy(RetryableInferenceError):
    """The local engine already has its maximum number of queued requests."""

    code = "engine_busy"


class DeadlineExceeded(RetryableInferenceError):
    """The request's deadline passed before (or while) it was served."""

    code = "deadline_exceeded"


class RouteUnavailable(RetryableInferenceError):
    """Every deployment of the route, including fallbacks, failed or is cooling down."""

    code = "route_unavailable"


class StreamInterrupted(RouteUnavailable):
    """A streamed cloud answer failed after some of it was already handed on: no fallback
    may generate a second answer behind the partial one (Portkey #1797's bug class); the
    caller ends its stream with an error."""

    code = "stream_interrupted"


class InvalidRequest(FinalInferenceError):
    """The request is malformed or asks for something not configured (unknown alias, …)."""

    code = "invalid_request"


StructuredErrorCode = Literal["schema_unsupported", "invalid_json", "schema_violation", "truncated"]


class StructuredOutputError(FinalInferenceError):
    """Structured output failed closed; ``error_code`` says why.

    * ``schema_unsupported`` – the schema is invalid, unsatisfiable, or no grammar can be built
    * ``invalid_json`` – the output does not parse as JSON
    * ``schema_violation`` – the output parses but does not validate against the schema
    * ``truncated`` – generation stopped at ``max_tokens`` (finish_reason ``"length"``)
    """

    code = "structured_output"

    def __init__(self, code: StructuredErrorCode, message: str) -> None:
        super().__init__(message)
        self.structured_code: StructuredErrorCode = code

    @property
    def error_code(self) -> str:
        return self.structured_code


class BudgetExceeded(FinalInferenceError):
    """The agent's or the global daily budget would be exceeded and the policy is reject."""

    code = "budget_exceeded"


class SafetyBlocked(FinalInferenceError):
    """The safety filter refused the input or the output."""

    code = "safety_blocked"


class LanguageMismatch(FinalInferenceError):
    """The answer is not in the requested language, also after one retry
    (:mod:`inference.language`)."""

    code = "language_mismatch"


class PricingUnknown(FinalInferenceError):
    """No price is known for a cloud model; configure one explicitly."""

    code = "pricing_unknown"


class ModelLoadError(FinalInferenceError):
    """The local GGUF model file is missing or llama.cpp cannot load it."""

    code = "model_unavailable"


RETRYABLE_CODES: frozenset[str] = frozenset(
    {EngineBusy.code, DeadlineExceeded.code, RouteUnavailable.code, StreamInterrupted.code}
)
