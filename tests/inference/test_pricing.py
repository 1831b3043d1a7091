"""Pricing: local is free, cloud prices from a litellm-style cost map, unknown models fail."""

from __future__ import annotations

import pytest

from inference.errors import PricingUnknown
from inference.pricing import (
    LOCAL_MODEL,
    MESSAGE_OVERHEAD_TOKENS,
    ModelPrice,
    PriceTable,
    estimate_prompt_tokens,
    litellm_cost_map,
)

COST_MAP = {
    "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
    "claude-x": {"input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05},
    "no-price": {"max_tokens": 10},
}


def test_local_model_is_free():
    assert PriceTable().price(LOCAL_MODEL, 10_000, 10_000) == 0.0


def test_prices_from_cost_map_per_1k_tokens():
    table = PriceTable.from_cost_map(["openai/gpt-4o-mini"], COST_MAP)
    price = table.lookup("openai/gpt-4o-mini")
    assert price.prompt_per_1k_usd == pytest.approx(1.5e-04)
    assert price.completion_per_1k_usd == pytest.approx(6e-04)
    # 1000 prompt + 500 completion tokens
    assert table.price("openai/gpt-4o-mini", 1000, 500) == pytest.approx(1.5e-04 + 3e-04)
    # litellm reports the served model without its provider prefix
    assert table.price("gpt-4o-mini", 1000, 500) == pytest.approx(1.5e-04 + 3e-04)


def test_unknown_or_unpriced_models_raise():
    with pytest.raises(PricingUnknown, match="mystery"):
        PriceTable.from_cost_map(["openai/mystery"], COST_MAP)
    with pytest.raises(PricingUnknown):
        PriceTable.from_cost_map(["no-price"], COST_MAP)
    with pytest.raises(PricingUnknown):
        PriceTable().price("gpt-4o-mini", 1, 1)


def test_overrides_win_over_the_cost_map():
    table = PriceTable.from_cost_map(
        ["openai/gpt-4o-mini", "private/model"],
        COST_MAP,
        overrides={"private/model": ModelPrice(1.0, 2.0), "openai/gpt-4o-mini": ModelPrice(0, 0)},
    )
    assert table.price("private/model", 1000, 1000) == pytest.approx(3.0)
    assert table.price("openai/gpt-4o-mini", 1000, 1000) == 0.0


def test_estimate_takes_the_most_expensive_deployment_and_all_max_tokens():
    table = PriceTable.from_cost_map(["gpt-4o-mini", "claude-x"], COST_MAP)
    expected = (100 * 3e-06) + (50 * 1.5e-05)
    assert table.estimate(["gpt-4o-mini", "claude-x"], 100, 50) == pytest.approx(expected)
    assert table.estimate([LOCAL_MODEL], 100, 50) == 0.0


def test_prompt_token_estimate_uses_tokenizer_or_four_chars_per_token():
    texts = ["abcdefgh", "abc"]  # 2 + 1 tokens at ~4 chars/token
    assert estimate_prompt_tokens(texts) == 3 + 2 * MESSAGE_OVERHEAD_TOKENS
    assert estimate_prompt_tokens(texts, len) == 11 + 2 * MESSAGE_OVERHEAD_TOKENS


def test_litellm_cost_map_has_known_models():
    cost_map = litellm_cost_map()
    entry = cost_map["gpt-4o-mini"]
    assert entry["input_cost_per_token"] > 0 and entry["output_cost_per_token"] > 0
