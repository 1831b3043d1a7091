"""Inference workers: llama.cpp on Kafka, litellm routing, budgets, token accounting.

The core (this package) turns an :class:`InferenceRequest` into an :class:`InferenceResponse`
through :class:`InferenceService`; the Kafka wiring lives elsewhere. Importing it loads neither
llama-cpp-python nor litellm: they are imported when an engine or a router is built.
"""

from inference.budget import BudgetLedger, BudgetPolicy, DayTotals, Decision, utc_day
from inference.cache import ResponseCache, cache_key
from inference.dispatch import CloudClient, Completion, Dispatcher
from inference.engine import CompletionEngine, LlamaEngine, file_sha256
from inference.errors import (
    RETRYABLE_CODES,
    BudgetExceeded,
    DeadlineExceeded,
    EngineBusy,
    FinalInferenceError,
    InferenceError,
    InvalidRequest,
    ModelLoadError,
    PricingUnknown,
    RetryableInferenceError,
    RouteUnavailable,
    SafetyBlocked,
    StructuredOutputError,
)
from inference.pricing import (
    LOCAL_MODEL,
    ModelPrice,
    PriceTable,
    estimate_prompt_tokens,
    litellm_cost_map,
)
from inference.router import (
    LOCAL_ALIAS,
    CloudDeployment,
    Route,
    RouterPlan,
    RouterSettings,
    RouteSpec,
    build_router_plan,
    make_router,
)
from inference.safety import SafetyFilter, SafetyPolicy, SafetyVerdict
from inference.service import InferenceService
from inference.structured import CompiledSchema, compile_schema, parse_structured
from inference.types import (
    EngineResult,
    ErrorInfo,
    InferenceRequest,
    InferenceResponse,
    Message,
)

__all__ = [
    "LOCAL_ALIAS",
    "LOCAL_MODEL",
    "RETRYABLE_CODES",
    "BudgetExceeded",
    "BudgetLedger",
    "BudgetPolicy",
    "CloudClient",
    "CloudDeployment",
    "CompiledSchema",
    "Completion",
    "CompletionEngine",
    "DayTotals",
    "DeadlineExceeded",
    "Decision",
    "Dispatcher",
    "EngineBusy",
    "EngineResult",
    "ErrorInfo",
    "FinalInferenceError",
    "InferenceError",
    "InferenceRequest",
    "InferenceResponse",
    "InferenceService",
    "InvalidRequest",
    "LlamaEngine",
    "Message",
    "ModelLoadError",
    "ModelPrice",
    "PriceTable",
    "PricingUnknown",
    "ResponseCache",
    "RetryableInferenceError",
    "Route",
    "RouteSpec",
    "RouteUnavailable",
    "RouterPlan",
    "RouterSettings",
    "SafetyBlocked",
    "SafetyFilter",
    "SafetyPolicy",
    "SafetyVerdict",
    "StructuredOutputError",
    "build_router_plan",
    "cache_key",
    "compile_schema",
    "estimate_prompt_tokens",
    "file_sha256",
    "litellm_cost_map",
    "make_router",
    "parse_structured",
    "utc_day",
]
