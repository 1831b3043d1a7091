"""Prices per model, in US dollars per 1,000 tokens, and the estimates made before dispatch.

* The local model costs 0.0 (:data:`LOCAL_MODEL`).
* Cloud prices come from litellm's ``model_cost`` map (``input_cost_per_token`` and
  ``output_cost_per_token``, USD per token, × 1000), passed in by the caller – see
  :func:`litellm_cost_map` – or from explicit ``overrides``. A model with no price raises
  :class:`~inference.errors.PricingUnknown`: we never assume free.
* Before dispatch the prompt is counted with the local tokenizer when one is given, else
  estimated as ``ceil(characters / 4)`` (OpenAI's rule of thumb for English, "What are tokens
  and how to count them?"), plus :data:`MESSAGE_OVERHEAD_TOKENS` per message for role markers;
  the completion is assumed to use all of ``max_tokens``, so the estimate is an upper bound for
  the completion side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inference.errors import PricingUnknown

__all__ = [
    "LOCAL_MODEL",
    "MESSAGE_OVERHEAD_TOKENS",
    "ModelPrice",
    "PriceTable",
    "estimate_prompt_tokens",
    "litellm_cost_map",
]

#: Pricing key of the local llama.cpp model.
LOCAL_MODEL = "local"
#: Tokens added per message for the chat template's role markers (estimate).
MESSAGE_OVERHEAD_TOKENS = 4


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """US dollars per 1,000 prompt tokens and per 1,000 completion tokens."""

    prompt_per_1k_usd: float
    completion_per_1k_usd: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Cost in USD of the given token counts."""
        return (
            prompt_tokens * self.prompt_per_1k_usd + completion_tokens * self.completion_per_1k_usd
        ) / 1000.0


FREE = ModelPrice(0.0, 0.0)


def litellm_cost_map() -> Mapping[str, Mapping[str, Any]]:
    """litellm's ``model_cost`` map (imports litellm; it may try to refresh the map online
    unless ``LITELLM_LOCAL_MODEL_COST_MAP=True`` is set in the environment)."""
    import litellm

    cost: Mapping[str, Mapping[str, Any]] = litellm.model_cost
    return cost


def _bare(model: str) -> str:
    """``"openai/gpt-4o-mini"`` → ``"gpt-4o-mini"``."""
    return model.split("/", 1)[1] if "/" in model else model


class PriceTable:
    """Model name → :class:`ModelPrice`; the local model is always present and free.

    Lookups try the name as given, then without its ``provider/`` prefix (litellm reports
    ``gpt-4o-mini`` for a deployment configured as ``openai/gpt-4o-mini``).
    """

    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self._prices: dict[str, ModelPrice] = {LOCAL_MODEL: FREE}
        for model, price in (prices or {}).items():
            self._prices[model] = price
            self._prices.setdefault(_bare(model), price)

    @classmethod
    def from_cost_map(
        cls,
        models: Iterable[str],
        cost_map: Mapping[str, Mapping[str, Any]],
        overrides: Mapping[str, ModelPrice] | None = None,
    ) -> PriceTable:
        """Prices of ``models`` from a litellm-style cost map; ``overrides`` win.

        Raises:
            PricingUnknown: a model has neither an override nor both per-token costs.
        """
        overrides = overrides or {}
        prices: dict[str, ModelPrice] = {}
        for model in models:
            if model in overrides:
                prices[model] = overrides[model]
                continue
            entry = cost_map.get(model) or cost_map.get(_bare(model))
            if entry is None or entry.get("input_cost_per_token") is None:
                raise PricingUnknown(f"no price for model {model!r}; add it to the overrides")
            prices[model] = ModelPrice(
                prompt_per_1k_usd=float(entry["input_cost_per_token"]) * 1000.0,
                completion_per_1k_usd=float(entry.get("output_cost_per_token") or 0.0) * 1000.0,
            )
        return cls(prices)

    def lookup(self, model: str) -> ModelPrice:
        """The price of ``model``. Raises PricingUnknown."""
        price = self._prices.get(model) or self._prices.get(_bare(model))
        if price is None:
            raise PricingUnknown(f"no price for model {model!r}")
        return price

    def price(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """Actual cost in USD of a finished call. Raises PricingUnknown."""
        return self.lookup(model).cost(prompt_tokens, completion_tokens)

    def estimate(self, models: Sequence[str], prompt_tokens: int, max_tokens: int) -> float:
        """Upper-bound USD before dispatch: the most expensive of ``models`` (a route's
        deployments), all ``max_tokens`` generated. Raises PricingUnknown."""
        return max((self.price(m, prompt_tokens, max_tokens) for m in models), default=0.0)


def estimate_prompt_tokens(
    texts: Sequence[str], count_tokens: Callable[[str], int] | None = None
) -> int:
    """Prompt tokens of chat messages with contents ``texts`` (see the module docstring)."""
    overhead = MESSAGE_OVERHEAD_TOKENS * len(texts)
    if count_tokens is not None:
        return overhead + sum(count_tokens(t) for t in texts)
    return overhead + sum(math.ceil(len(t) / 4) for t in texts)
