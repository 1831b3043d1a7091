"""Route breakers (aiobreaker), the fallback chain and the complexity heuristic: pure."""

from __future__ import annotations

import asyncio

import pytest

from inference.breakers import RouteBreakers, RouteFailure, RouteOpen, fallback_chain
from inference.complexity import complexity, pick_alias


def test_fallback_chain_is_cloud_then_cloud_then_local_each_once():
    fallbacks = {"big": ("mid", "local"), "mid": ("big", "small"), "small": ()}
    usable = ("big", "mid", "small")
    assert fallback_chain("big", fallbacks, usable) == ["big", "mid", "small", "local"]
    assert fallback_chain("local", fallbacks, usable) == ["local"]
    # an alias without a usable deployment is skipped, its fallbacks are not
    assert fallback_chain("big", fallbacks, ("small",)) == ["small", "local"]


async def test_breaker_opens_after_fail_max_refuses_then_resets():
    breakers = RouteBreakers(fail_max=2, reset_timeout_s=60)
    calls = []

    async def failing():
        calls.append(1)
        raise RouteFailure("down", outcome={"code": "route_unavailable"})

    async def ok():
        calls.append(1)
        return "answer"

    for _ in range(2):
        with pytest.raises(RouteFailure) as failed:
            await breakers.call("cloud-a", failing)
        assert failed.value.outcome == {"code": "route_unavailable"}
    assert breakers.state_of("cloud-a") == "open"
    with pytest.raises(RouteOpen):
        await breakers.call("cloud-a", ok)
    assert len(calls) == 2  # the refused call never ran
    snap = {b["alias"]: b for b in breakers.snapshot(["local"])}
    assert snap["cloud-a"]["state"] == "open" and snap["cloud-a"]["opened_times"] == 1
    assert snap["cloud-a"]["reopens_at"] is not None
    assert snap["local"] == {"alias": "local", "state": "closed", "failures": 0, "fail_max": 2,
                             "opened_times": 0, "reopens_at": None}
    assert breakers.reset("cloud-a") == ["cloud-a"]
    assert await breakers.call("cloud-a", ok) == "answer"
    assert breakers.state_of("cloud-a") == "closed"


async def test_a_success_clears_the_failure_count():
    breakers = RouteBreakers(fail_max=2, reset_timeout_s=60)

    async def failing():
        raise RouteFailure("down")

    async def ok():
        return 1

    with pytest.raises(RouteFailure):
        await breakers.call("a", failing)
    await breakers.call("a", ok)
    with pytest.raises(RouteFailure):
        await breakers.call("a", failing)
    assert breakers.state_of("a") == "closed"


async def test_open_breaker_lets_one_trial_through_after_the_timeout():
    breakers = RouteBreakers(fail_max=1, reset_timeout_s=0.05)

    async def failing():
        raise RouteFailure("down")

    async def ok():
        return "back"

    with pytest.raises(RouteFailure):
        await breakers.call("a", failing)
    assert breakers.state_of("a") == "open"
    await asyncio.sleep(0.1)
    assert await breakers.call("a", ok) == "back"
    assert breakers.state_of("a") == "closed"


def test_complexity_sends_short_questions_local_and_hard_ones_to_the_cloud():
    easy = complexity(["Say hello."], max_tokens=16)
    assert easy.score < 0.1 and pick_alias(easy, ("cloud-a",)) == "local"
    code = "```python\ndef f(x):\n    return x\n```\n" * 40
    hard = complexity([f"Explain step by step why this is slow and optimise it:\n{code}"],
                      max_tokens=1024)
    assert set(hard.signals) >= {"code", "reasoning", "long_answer"}
    assert hard.score >= 0.5 and pick_alias(hard, ("cloud-a", "cloud-b")) == "cloud-a"
    assert pick_alias(hard, ()) == "local"  # no cloud configured: local serves it
