"""Router configuration: aliases, key filtering, litellm arguments, fallback resolution, and a
real litellm Router driven with ``mock_response`` (no network)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from inference.errors import InvalidRequest, RouteUnavailable
from inference.router import (
    CloudDeployment,
    RouterSettings,
    RouteSpec,
    build_router_plan,
    make_router,
)

SETTINGS = RouterSettings(
    routes=(
        RouteSpec(
            alias="smart",
            deployments=(CloudDeployment(model="anthropic/claude-3-5-sonnet-20240620"),),
            fallbacks=("fast", "local"),
        ),
        RouteSpec(
            alias="fast",
            deployments=(
                CloudDeployment(model="openai/gpt-4o-mini"),
                CloudDeployment(model="azure/gpt-4o-mini", provider="azure", api_base="https://x"),
            ),
            fallbacks=("local",),
        ),
        RouteSpec(alias="cloud-only", deployments=(CloudDeployment(model="openai/gpt-4o"),)),
    ),
    num_retries=1,
    timeout_s=12.5,
    allowed_fails=2,
    cooldown_time_s=7,
)
KEYS = {"openai": SecretStr("sk-openai"), "anthropic": SecretStr("sk-anthropic")}

# pydantic warns about litellm's own TypedDicts when litellm builds a mock response
pytestmark = pytest.mark.filterwarnings("ignore:Item .* `ReadOnly` qualifier:UserWarning")


def test_only_deployments_with_keys_are_kept():
    plan = build_router_plan(SETTINGS, {"openai": SecretStr("sk-openai")})
    assert plan.cloud_aliases == ("fast", "cloud-only")
    assert plan.cloud_models() == ("openai/gpt-4o-mini", "openai/gpt-4o")
    assert build_router_plan(SETTINGS).cloud_aliases == ()


def test_router_kwargs_carry_litellm_features():
    kwargs = build_router_plan(SETTINGS, KEYS).router_kwargs()
    assert (kwargs["num_retries"], kwargs["timeout"]) == (1, 12.5)
    assert (kwargs["allowed_fails"], kwargs["cooldown_time"]) == (2, 7)
    assert kwargs["fallbacks"] == [{"smart": ["fast"]}]  # "local" is ours, not litellm's
    by_id = {m["model_info"]["id"]: m for m in kwargs["model_list"]}
    assert set(by_id) == {"smart#0", "fast#0", "cloud-only#0"}  # azure has no key
    fast = by_id["fast#0"]
    assert fast["model_name"] == "fast"
    assert fast["litellm_params"]["model"] == "openai/gpt-4o-mini"
    assert fast["litellm_params"]["api_key"] == "sk-openai"
    assert fast["litellm_params"]["drop_params"] is True


def test_keys_do_not_leak_into_reprs():
    plan = build_router_plan(SETTINGS, KEYS)
    assert "sk-openai" not in repr(plan) and "sk-openai" not in str(plan)


def test_resolution_and_fallback_decisions():
    plan = build_router_plan(SETTINGS, KEYS)
    smart = plan.resolve("smart")
    assert (smart.kind, smart.target, smart.local_fallback) == ("cloud", "smart", True)
    assert plan.resolve("cloud-only").local_fallback is False
    local = plan.resolve("local")
    assert (local.kind, local.target, local.models) == ("local", "local", ("local",))


def test_alias_without_keys_resolves_through_its_fallbacks():
    only_openai = build_router_plan(SETTINGS, {"openai": SecretStr("k")})
    route = only_openai.resolve("smart")  # no anthropic key: smart → fast
    assert (route.requested, route.kind, route.target) == ("smart", "cloud", "fast")
    no_keys = build_router_plan(SETTINGS)
    route = no_keys.resolve("smart")  # smart → fast → local
    assert (route.requested, route.kind, route.target) == ("smart", "local", "local")
    with pytest.raises(RouteUnavailable):
        no_keys.resolve("cloud-only")


def test_unknown_alias_is_an_invalid_request():
    with pytest.raises(InvalidRequest, match="nope"):
        build_router_plan(SETTINGS, KEYS).resolve("nope")


@pytest.mark.parametrize(
    "routes",
    [
        (RouteSpec(alias="a", deployments=(CloudDeployment(model="openai/x"),), fallbacks=("b",)),),
        (RouteSpec(alias="a", deployments=(CloudDeployment(model="openai/x"),), fallbacks=("a",)),),
        (RouteSpec(alias="local", deployments=(CloudDeployment(model="openai/x"),)),),
        (
            RouteSpec(alias="a", deployments=(CloudDeployment(model="openai/x"),)),
            RouteSpec(alias="a", deployments=(CloudDeployment(model="openai/y"),)),
        ),
    ],
)
def test_bad_route_settings_are_rejected(routes):
    with pytest.raises(ValidationError):
        RouterSettings(routes=routes)


def test_fallback_cycles_terminate():
    settings = RouterSettings(
        routes=(
            RouteSpec(alias="a", deployments=(CloudDeployment(model="x/a"),), fallbacks=("b",)),
            RouteSpec(alias="b", deployments=(CloudDeployment(model="x/b"),), fallbacks=("a",)),
        )
    )
    with pytest.raises(RouteUnavailable):
        build_router_plan(settings).resolve("a")


def test_no_router_without_cloud_deployments():
    assert make_router(build_router_plan(SETTINGS)) is None


async def test_litellm_router_serves_and_falls_back_with_mock_responses():
    router = make_router(build_router_plan(SETTINGS, KEYS))
    assert router is not None
    messages = [{"role": "user", "content": "hi"}]
    direct = await router.acompletion(model="fast", messages=messages, mock_response="pong")
    assert direct.choices[0].message.content == "pong"
    assert direct._hidden_params["model_id"] == "fast#0"
    # litellm's own fallback (smart → fast), triggered by its test hook
    fallen = await router.acompletion(
        model="smart", messages=messages, mock_response="pong", mock_testing_fallbacks=True
    )
    assert fallen._hidden_params["model_id"] == "fast#0"
    assert fallen._hidden_params["litellm_model_name"] == "openai/gpt-4o-mini"
