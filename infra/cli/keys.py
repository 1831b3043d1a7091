"""``lvlup keys create --scope … --name …``: make an API key; the token is printed once."""

from __future__ import annotations

from typing import Annotated

import typer

from streams.settings import Settings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``lvlup keys`` to ``app``."""
    keys = typer.Typer(help="API keys (stored hashed; a token is shown once).",
                       no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def create(
        ctx: typer.Context,
        name: Annotated[str, typer.Option(help="who uses the key")],
        scope: Annotated[list[str], typer.Option(
            help="read | command | admin | inference (repeatable)")],
    ) -> None:
        """Create a key and print its token (the only time it is shown)."""
        from api.auth import Scope, create_key
        from sinks.app import postgres_engine

        try:
            scopes = [Scope(s) for s in scope]
        except ValueError as exc:
            raise typer.BadParameter(f"{exc}; use read, command, admin or inference") from exc
        settings: Settings = ctx.obj
        engine = postgres_engine(settings)
        try:
            info, token = create_key(engine, name, scopes)
        finally:
            engine.dispose()
        typer.echo(f"key {info.key_id} ({info.name}): scopes "
                   f"{', '.join(sorted(s.value for s in info.scopes))}", err=True)
        typer.echo(token)

    @keys.command("revoke")
    def revoke(ctx: typer.Context,
               key_id: Annotated[str, typer.Argument(help="the key id shown at creation")]) -> None:
        """Revoke a key (it stops working within the API's key cache TTL)."""
        from api.auth import revoke_key
        from sinks.app import postgres_engine

        engine = postgres_engine(ctx.obj)
        try:
            done = revoke_key(engine, key_id)
        finally:
            engine.dispose()
        if not done:
            typer.echo(f"no active key {key_id}", err=True)
            raise typer.Exit(1)
        typer.echo(f"revoked {key_id}")
