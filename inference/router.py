"""Routes: model aliases → the local engine or litellm Router deployments, with fallbacks.

:class:`RouterSettings` (nest it in the process settings) declares aliases. ``"local"`` always
exists and means the in-process llama.cpp engine; other aliases list cloud deployments
(litellm model strings such as ``"openai/gpt-4o-mini"``) and ordered fallback aliases.

:func:`build_router_plan` keeps only deployments whose provider has an API key (keys are passed
in as ``SecretStr``, never read from the environment) and produces a :class:`RouterPlan`:

* ``router_kwargs()`` – the ``litellm.Router`` arguments: ``model_list`` (one entry per
  deployment, ``model_name`` = alias, ``model_info.id`` = ``"<alias>#<n>"`` so a response
  tells which alias served it, ``drop_params`` so provider-unsupported parameters such as
  ``seed`` are dropped rather than failing), ``fallbacks`` (cloud → cloud only), ``num_retries``,
  ``timeout``, ``allowed_fails``, ``cooldown_time``. Retries, cooldowns and fallbacks between
  cloud deployments are litellm's own (Router docs, "Fallbacks", "Cooldowns"); we add none.
* ``resolve(alias)`` – the :class:`Route` to take: local, or a cloud alias with
  ``local_fallback`` when ``"local"`` is in its fallbacks (the dispatcher then serves locally
  after litellm gives up). An alias with no usable deployment resolves through its fallbacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from inference.errors import InvalidRequest, RouteUnavailable
from inference.pricing import LOCAL_MODEL

if TYPE_CHECKING:
    from litellm.router import Router

__all__ = [
    "LOCAL_ALIAS",
    "CloudDeployment",
    "Route",
    "RouteSpec",
    "RouterPlan",
    "RouterSettings",
    "build_router_plan",
    "make_router",
]

LOCAL_ALIAS = "local"
_ALIAS = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class CloudDeployment(BaseModel):
    """One litellm deployment: ``model`` is a litellm model string, ``provider`` names its key."""

    model: str = Field(min_length=3, description="litellm model, e.g. openai/gpt-4o-mini")
    provider: str | None = Field(
        default=None, description="key name in api_keys; default: the model's prefix"
    )
    api_base: str | None = Field(default=None, description="endpoint override")
    rpm: int | None = Field(default=None, ge=1, description="requests/minute, litellm routing")

    @property
    def key_name(self) -> str:
        """The name of the API key this deployment needs."""
        return self.provider or self.model.split("/", 1)[0]


class RouteSpec(BaseModel):
    """An alias: cloud deployments (tried by litellm) and fallback aliases, in order."""

    alias: str = Field(pattern=_ALIAS)
    deployments: tuple[CloudDeployment, ...] = Field(min_length=1)
    fallbacks: tuple[str, ...] = Field(default=(), description="aliases tried after this one")


class RouterSettings(BaseModel):
    """Cloud aliases and litellm Router behaviour; ``"local"`` is implicit."""

    routes: tuple[RouteSpec, ...] = ()
    num_retries: int = Field(default=2, ge=0, le=10, description="litellm retries per call")
    timeout_s: float = Field(default=30.0, gt=0, description="per cloud call, seconds")
    allowed_fails: int = Field(
        default=3, ge=0, description="failures per minute before a deployment cools down"
    )
    cooldown_time_s: float = Field(default=30.0, ge=0, description="cooldown, seconds")

    @model_validator(mode="after")
    def _aliases_are_known(self) -> RouterSettings:
        names = [r.alias for r in self.routes]
        if LOCAL_ALIAS in names or len(set(names)) != len(names):
            raise ValueError("route aliases must be unique and must not be 'local'")
        for route in self.routes:
            unknown = set(route.fallbacks) - {*names, LOCAL_ALIAS}
            if unknown or route.alias in route.fallbacks:
                raise ValueError(f"route {route.alias}: bad fallbacks {sorted(unknown)}")
        return self


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes. ``target`` is the alias served (``"local"`` or a cloud alias);
    ``models`` the litellm model strings of its deployments (the pricing keys)."""

    kind: Literal["local", "cloud"]
    requested: str
    target: str
    models: tuple[str, ...]
    local_fallback: bool = False


@dataclass(frozen=True)
class RouterPlan:
    """Usable aliases and the litellm Router configuration (API keys kept as ``SecretStr``)."""

    settings: RouterSettings
    deployments: Mapping[str, tuple[tuple[CloudDeployment, SecretStr], ...]] = field(repr=False)

    @property
    def cloud_aliases(self) -> tuple[str, ...]:
        """Aliases with at least one usable deployment, in configuration order."""
        return tuple(self.deployments)

    def cloud_models(self) -> tuple[str, ...]:
        """Every usable deployment's litellm model string (to build the price table)."""
        return tuple(dict.fromkeys(d.model for deps in self.deployments.values() for d, _ in deps))

    def fallbacks(self) -> list[dict[str, list[str]]]:
        """litellm ``fallbacks``: for each usable alias, its usable cloud fallbacks."""
        out: list[dict[str, list[str]]] = []
        for spec in self.settings.routes:
            chain = [f for f in spec.fallbacks if f in self.deployments]
            if spec.alias in self.deployments and chain:
                out.append({spec.alias: chain})
        return out

    def router_kwargs(self) -> dict[str, Any]:
        """Arguments for ``litellm.Router(**kwargs)``; contains the API keys in clear."""
        model_list: list[dict[str, Any]] = []
        for alias, deps in self.deployments.items():
            for index, (dep, key) in enumerate(deps):
                params: dict[str, Any] = {
                    "model": dep.model,
                    "api_key": key.get_secret_value(),
                    "drop_params": True,
                }
                if dep.api_base is not None:
                    params["api_base"] = dep.api_base
                if dep.rpm is not None:
                    params["rpm"] = dep.rpm
                model_list.append(
                    {
                        "model_name": alias,
                        "litellm_params": params,
                        "model_info": {"id": f"{alias}#{index}"},
                    }
                )
        s = self.settings
        return {
            "model_list": model_list,
            "fallbacks": self.fallbacks(),
            "num_retries": s.num_retries,
            "timeout": s.timeout_s,
            "allowed_fails": s.allowed_fails,
            "cooldown_time": s.cooldown_time_s,
        }

    def resolve(self, alias: str) -> Route:
        """The route for ``alias``.

        Raises:
            InvalidRequest: the alias is not configured.
            RouteUnavailable: neither the alias nor any fallback has a usable deployment.
        """
        specs = {s.alias: s for s in self.settings.routes}
        if alias != LOCAL_ALIAS and alias not in specs:
            raise InvalidRequest(f"unknown model alias {alias!r}")
        route = self._walk(alias, specs, seen=set())
        if route is None:
            raise RouteUnavailable(f"no configured deployment can serve alias {alias!r}")
        return Route(route.kind, alias, route.target, route.models, route.local_fallback)

    def _walk(self, alias: str, specs: Mapping[str, RouteSpec], seen: set[str]) -> Route | None:
        if alias == LOCAL_ALIAS:
            return Route("local", alias, LOCAL_ALIAS, (LOCAL_MODEL,))
        if alias in seen:
            return None
        seen.add(alias)
        spec = specs[alias]
        if alias in self.deployments:
            models = tuple(d.model for d, _ in self.deployments[alias])
            return Route("cloud", alias, alias, models, LOCAL_ALIAS in spec.fallbacks)
        for fallback in spec.fallbacks:
            found = self._walk(fallback, specs, seen)
            if found is not None:
                return found
        return None


def build_router_plan(
    settings: RouterSettings, api_keys: Mapping[str, SecretStr] | None = None
) -> RouterPlan:
    """Keep the deployments whose ``key_name`` has a key in ``api_keys`` (provider → key)."""
    keys = api_keys or {}
    usable: dict[str, tuple[tuple[CloudDeployment, SecretStr], ...]] = {}
    for spec in settings.routes:
        deps = tuple((d, keys[d.key_name]) for d in spec.deployments if d.key_name in keys)
        if deps:
            usable[spec.alias] = deps
    return RouterPlan(settings=settings, deployments=usable)


def make_router(plan: RouterPlan) -> Router | None:
    """A ``litellm.Router`` for the plan's cloud deployments; None when there are none."""
    if not plan.deployments:
        return None
    from litellm.router import Router

    router: Router = Router(**plan.router_kwargs())  # litellm >= 1.100 types __init__ loosely
    return router
