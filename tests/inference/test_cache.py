"""Response cache: deterministic requests only, key sensitivity, TTL and LRU with a fake clock."""

from __future__ import annotations

import pytest

from inference.cache import ResponseCache, cache_key
from inference.types import InferenceResponse, Message
from tests.inference.conftest import make_request


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _response(text: str) -> InferenceResponse:
    return InferenceResponse(
        request_id="r",
        text=text,
        json=None,
        finish_reason="stop",
        prompt_tokens=1,
        completion_tokens=1,
        latency_ms=1.0,
        model_sha256=None,
        route="local",
        cost_usd=0.0,
        cached=False,
    )


def test_only_deterministic_requests_have_a_key():
    assert cache_key(make_request(temperature=0.0), "m") is not None
    assert cache_key(make_request(temperature=0.8, seed=3), "m") is not None
    assert cache_key(make_request(temperature=0.8, seed=None), "m") is None


def test_key_ignores_identity_of_requester_but_not_output_shaping_fields():
    base = make_request(temperature=0.0)
    key = cache_key(base, "local:abc")
    same = make_request(temperature=0.0, request_id="other", requester="x", agent_id="y")
    assert cache_key(same, "local:abc") == key
    assert cache_key(base.model_copy(update={"deadline_ms": 5}), "local:abc") == key
    variants = [
        cache_key(base, "local:def"),
        cache_key(make_request("Say goodbye.", temperature=0.0), "local:abc"),
        cache_key(make_request(temperature=0.0, top_p=0.5), "local:abc"),
        cache_key(make_request(temperature=0.0, seed=1), "local:abc"),
        cache_key(make_request(temperature=0.0, max_tokens=17), "local:abc"),
        cache_key(make_request(temperature=0.0, language="fr"), "local:abc"),
        cache_key(make_request(temperature=0.0, json_schema={"type": "string"}), "local:abc"),
        cache_key(
            make_request(temperature=0.0).model_copy(
                update={"messages": (Message(role="system", content="Say hello."),)}
            ),
            "local:abc",
        ),
    ]
    assert key not in variants and len(set(variants)) == len(variants)


def test_entries_expire_after_ttl():
    clock = Clock()
    cache = ResponseCache(ttl_s=10, max_entries=4, clock=clock)
    cache.put("k", _response("a"))
    clock.now += 9.9
    assert cache.get("k") is not None
    clock.now += 0.2
    assert cache.get("k") is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_least_recently_used_entry_is_evicted():
    cache = ResponseCache(ttl_s=60, max_entries=2, clock=Clock())
    cache.put("a", _response("a"))
    cache.put("b", _response("b"))
    assert cache.get("a") is not None  # a is now more recent than b
    cache.put("c", _response("c"))
    assert cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None


def test_put_refreshes_ttl_and_value():
    clock = Clock()
    cache = ResponseCache(ttl_s=10, max_entries=2, clock=clock)
    cache.put("k", _response("old"))
    clock.now += 8
    cache.put("k", _response("new"))
    clock.now += 8
    hit = cache.get("k")
    assert hit is not None and hit.text == "new"


@pytest.mark.parametrize(("ttl", "size"), [(0, 1), (1, 0)])
def test_bad_bounds_are_rejected(ttl, size):
    with pytest.raises(ValueError):
        ResponseCache(ttl_s=ttl, max_entries=size)
