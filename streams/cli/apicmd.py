"""``lvlup api``: the Starlette command/query API under uvicorn (one worker)."""

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
        host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    ) -> None:
        """Serve the HTTP API until SIGTERM/SIGINT."""
        import uvicorn

        from api.app import create_app

        settings: Settings = ctx.obj
        uvicorn.run(create_app(settings), host=host, port=port, log_level="warning",
                    access_log=False)
