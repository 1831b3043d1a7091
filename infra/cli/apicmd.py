"""``lvlup api``: the Starlette command/query API under uvicorn (one worker).

The API's settings come from ``LVLUP_API__*`` (:class:`api.settings.ApiSettings`);
``--host``/``--port`` override the listen address. ``lvlup run`` starts it as the ``api``
child with ``--port``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from streams.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``lvlup api`` to ``app``."""

    @app.command("api")
    def api_command(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option(
            help="bind address (default LVLUP_API__HOST or 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(
            help="TCP port (default LVLUP_API__PORT or 8000)", min=1, max=65535)] = None,
    ) -> None:
        """Serve the HTTP API until SIGTERM/SIGINT (OpenAPI at /openapi.json, docs at /docs)."""
        from api.server import serve
        from api.settings import api_settings_from_env
        from infra.chaos.failpoints import failpoints_for

        settings: Settings = ctx.obj
        api = api_settings_from_env()
        overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
        serve(settings, api.model_copy(update=overrides), failpoints=failpoints_for(settings))
