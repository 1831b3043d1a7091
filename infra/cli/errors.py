"""The CLI's error policy: a package's own error ends ``lvlup`` with one line and exit code 2.

Every package has one base error (``errors.py``): :class:`streams.errors.LvlupError`,
:class:`schemas.errors.SchemaError` (``CatalogError`` …), :class:`sinks.errors.SinkError`,
:class:`inference.errors.InferenceError` (``ModelLoadError`` …),
:class:`agents.custody.errors.CustodyError`, :class:`agents.proposals.errors.ProposalError`,
:class:`agents.guardian.errors.GuardianError` and :class:`infra.errors.StackError`; the schema
registry's :class:`schemas.confluent.RegistryUnavailable` stands apart (retryable, never a
record's fault). Any of them is something the user can act on: ``lvlup: error: <message>`` on
stderr, no traceback. Retryable errors say so (`` (retryable: try again)``); final ones do not.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from agents.custody.errors import CustodyError
from agents.guardian.errors import GuardianError
from agents.proposals.errors import ProposalError
from inference.errors import InferenceError, RetryableInferenceError
from infra.errors import StackError
from schemas.confluent import RegistryUnavailable
from schemas.errors import SchemaError
from sinks.errors import SinkError, StoreUnavailable
from streams.errors import LvlupError

__all__ = ["EXIT_USER_ERROR", "RETRYABLE_ERRORS", "USER_ERRORS", "error_line"]

EXIT_USER_ERROR = 2
"""The exit code of a command that ended in one of :data:`USER_ERRORS`."""

USER_ERRORS: tuple[type[Exception], ...] = (
    LvlupError, SchemaError, RegistryUnavailable, SinkError, InferenceError, CustodyError,
    ProposalError, GuardianError, StackError,
)
"""The packages' base errors (module doc)."""

RETRYABLE_ERRORS: tuple[type[Exception], ...] = (
    RegistryUnavailable, RetryableInferenceError, StoreUnavailable,
)
"""Errors the same command, run again later, may not meet."""


def error_line(exc: BaseException) -> str:
    """The one stderr line for ``exc`` (one of :data:`USER_ERRORS`): ``lvlup: error: …``,
    newlines folded, with `` (retryable: try again)`` for :data:`RETRYABLE_ERRORS`."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    suffix = " (retryable: try again)" if isinstance(exc, RETRYABLE_ERRORS) else ""
    return f"lvlup: error: {message}{suffix}"
