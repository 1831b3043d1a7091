"""structlog configuration: one call per process, from ``main()``.

Logs are key-value events on stderr (JSON when ``json=True``), so stdout stays free for command
output (``lvlup bench --json`` prints its object on stdout's last line).
"""

from __future__ import annotations

import faulthandler
import logging
import sys

import structlog

__all__ = ["configure_logging", "enable_crash_reports"]


class _StderrLogger(structlog.PrintLogger):
    """A PrintLogger writing to whatever ``sys.stderr`` is *now*, not the stream it saw when it
    was made: a cached logger otherwise keeps a stream that was closed since (typer's
    CliRunner swaps stderr per command; later log lines then raised "I/O operation on closed
    file" inside error handlers)."""

    @property
    def _file(self) -> object:
        return sys.stderr

    @_file.setter
    def _file(self, _value: object) -> None:
        """Ignored: the stream is looked up at every write."""


def _stderr_logger(*_args: object) -> _StderrLogger:
    return _StderrLogger()


def enable_crash_reports() -> None:
    """On a fatal signal (SIGSEGV, SIGFPE, SIGABRT, SIGBUS, SIGILL) write every thread's Python
    stack to stderr before the process dies (stdlib :mod:`faulthandler`).

    The platform loads native code into its processes (librdkafka, chdb, libpq, Arrow, the
    compiled codec); without this a crash in one of them leaves only "Segmentation fault"
    from the shell, as it did once in a replay benchmark's parent process (session 21, not
    reproduced in 11 further runs). Called first by every entry point's ``main``; idempotent.
    """
    if not faulthandler.is_enabled():
        faulthandler.enable(file=sys.__stderr__ or sys.stderr, all_threads=True)


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    """Route structlog and stdlib logging to stderr at ``level`` (DEBUG|INFO|WARNING|ERROR)."""
    numeric = logging.getLevelName(level)
    logging.basicConfig(stream=sys.stderr, level=numeric, format="%(message)s", force=True)
    for noisy in ("alembic", "aiokafka", "kafka"):  # chatty at INFO; their warnings still show
        logging.getLogger(noisy).setLevel(max(numeric, logging.WARNING))
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=True,
    )
