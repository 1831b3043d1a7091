"""The API's own settings: listen address, limits, CORS, keys, caches.

:class:`ApiSettings` is a plain pydantic model handed to :func:`api.app.create_app`; the
process entry point builds it from the environment with :func:`api_settings_from_env`
(``LVLUP_API__PORT=8080``, ``LVLUP_API__RATE_LIMIT_PER_KEY="100/second"`` …), the same
prefix and nesting as :class:`streams.settings.Settings`. Library code never reads the
environment.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from sinks.app import POSTGRES_GROUP

__all__ = ["ApiSettings", "api_settings_from_env"]


class ApiSettings(BaseModel):
    """Tunables of the HTTP API (units in the field descriptions)."""

    host: str = Field(default="127.0.0.1", description="listen address (loopback by default)")
    port: int = Field(default=8000, ge=0, le=65535, description="listen port; 0 = any free")
    require_keys: bool = Field(
        default=True,
        description="reads need a key with the read scope too; mutating routes always need "
        "the command (or admin) scope",
    )
    rate_limit_per_key: str = Field(
        default="100/second;3000/minute",
        description="moving-window limits per API key, `limits` notation separated by ';' "
        "(empty = none)",
    )
    rate_limit_per_ip: str = Field(
        default="200/second;6000/minute",
        description="moving-window limits per client IP, `limits` notation (empty = none)",
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="largest request body, bytes (413 above)"
    )
    max_batch_items: int = Field(
        default=1000, ge=1, le=100_000, description="records per POST /api/events batch"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="origins allowed by CORS (empty = CORS off)"
    )
    topic_prefix: str = Field(
        default="", pattern=r"^[a-z0-9.-]*$",
        description="prepended to every catalog topic name (scratch runs such as the "
        "benchmark); empty in production",
    )
    sink_group: str = Field(
        default=POSTGRES_GROUP,
        description="consumer group of the Postgres sink whose stored offsets are the "
        "watermark of Postgres reads",
    )
    lag_ttl_s: float = Field(
        default=1.0, ge=0, description="how long topic end offsets (for lag) are reused, s"
    )
    read_cache_ttl_s: float = Field(
        default=0.0,
        ge=0,
        le=60,
        description="how long a complete read answer (rows + the watermark read in the same "
        "snapshot) is reused, s; 0 = off",
    )
    key_cache_ttl_s: float = Field(
        default=5.0, ge=0, description="how long a looked-up API key is trusted, s"
    )
    command_timeout_s: float = Field(
        default=10.0, gt=0, le=300, description="longest wait for the broker's ack of a "
        "command, s (the API producer's message.timeout.ms)"
    )
    ws_queue_size: int = Field(
        default=256, ge=1, le=100_000, description="messages buffered per WebSocket client"
    )
    ws_max_per_key: int = Field(
        default=4, ge=1, le=10_000,
        description="open WebSocket connections per API key (per client IP when keys are "
        "not required and none was sent); one more is refused with close code 1008",
    )
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="addresses or networks of reverse proxies whose X-Forwarded-For is "
        "believed (RFC 7239 section 5.2 / X-Forwarded-For); empty = the TCP peer is the client",
    )
    session_max_age_s: int = Field(
        default=8 * 3600, ge=60, le=30 * 86400,
        description="lifetime of the dashboard's login cookie, s",
    )
    session_cookie_secure: bool = Field(
        default=False,
        description="mark the dashboard cookie Secure even on plain HTTP requests (set it "
        "behind a TLS-terminating proxy); it is always Secure on https requests",
    )


class _ApiEnv(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LVLUP_", env_nested_delimiter="__",
                                      extra="ignore")

    api: ApiSettings = Field(default_factory=ApiSettings)


def api_settings_from_env() -> ApiSettings:
    """:class:`ApiSettings` from ``LVLUP_API__*`` variables (for ``main()`` only)."""
    return _ApiEnv().api
