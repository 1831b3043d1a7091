"""Builds the ``lvlup`` typer app; each command group lives in its own module.

Errors a user can act on (:class:`infra.errors.StackError`, :class:`sinks.errors.SinkError`,
:class:`streams.errors.LvlupError`) end the command with one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from infra.errors import StackError
from sinks.errors import SinkError
from streams.cli import (
    apicmd,
    audit,
    data,
    keys,
    ops,
    proposalscmd,
    replaycmd,
    runcmd,
    stack,
    workers,
)
from streams.errors import LvlupError
from streams.logs import configure_logging
from streams.settings import Settings

__all__ = ["build_app", "main"]


def build_app() -> typer.Typer:
    """A fresh typer app with every command group registered."""
    app = typer.Typer(
        name="lvlup",
        help="Lvl_UP Streams: an event-driven platform for running, testing and auditing "
        "AI agents.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(ctx: typer.Context) -> None:
        settings = Settings()
        configure_logging(settings.log_level)
        ctx.obj = settings

    stack.register(app)
    data.register(app)
    ops.register(app)
    workers.register(app)
    runcmd.register(app)
    apicmd.register(app)
    audit.register(app)
    replaycmd.register(app)
    keys.register(app)
    proposalscmd.register(app)
    return app


def main() -> None:
    """Console-script entry point: run the app, turn known errors into one-line exits."""
    app = build_app()
    try:
        app(standalone_mode=True)
    except (StackError, SinkError, LvlupError) as exc:
        print(f"lvlup: error: {exc}", file=sys.stderr)
        sys.exit(2)
