"""Builds the ``lvlup`` typer app; each command group lives in its own module.

Errors a user can act on — every package's base error (:mod:`infra.cli.errors`) — end the
command with one line on stderr and exit code 2, no traceback.
"""

from __future__ import annotations

import sys

import typer

from infra.cli import (
    apicmd,
    audit,
    custodycmd,
    data,
    keys,
    ops,
    proposalscmd,
    replaycmd,
    runcmd,
    stack,
    workers,
)
from infra.cli.errors import EXIT_USER_ERROR, USER_ERRORS, error_line
from infra.supervisor import follow_supervisor
from streams.logs import configure_logging, enable_crash_reports
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
    custodycmd.register(app)
    return app


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app on ``argv`` (default ``sys.argv[1:]``); a
    package's base error (:data:`infra.cli.errors.USER_ERRORS`) ends it with one line on
    stderr and exit code 2. A native crash writes every thread's Python stack to stderr
    (:func:`streams.logs.enable_crash_reports`); a command started by a supervisor stops
    when the supervisor dies (:func:`infra.supervisor.follow_supervisor`)."""
    enable_crash_reports()
    follow_supervisor()
    app = build_app()
    try:
        app(args=argv, standalone_mode=True)
    except USER_ERRORS as exc:
        print(error_line(exc), file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
