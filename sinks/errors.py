"""Errors of the sinks and stores.

Hierarchy::

    SinkError                    base of everything a sink or store client raises
    ├── StoreUnavailable         retryable: the store is down or timed out; no offset is
    │   │                        committed, the batch is retried with backoff
    │   └── BackPressure         the sink's buffer is full; ``retry_after`` seconds
    ├── ChdbLocked               another process owns the chdb data directory
    └── QueryError               the store rejected a statement (bad SQL, missing table);
        └── ReadOnlyViolation    a non-read statement was sent on a read-only path

Third-party errors are translated at the boundary with ``raise … from exc``.
"""

from __future__ import annotations

__all__ = [
    "BackPressure",
    "ChdbLocked",
    "QueryError",
    "ReadOnlyViolation",
    "SinkError",
    "StoreUnavailable",
]


class SinkError(RuntimeError):
    """Base of the sinks' errors."""


class StoreUnavailable(SinkError):
    """The store is down or timed out: retry later, commit nothing."""


class BackPressure(StoreUnavailable):
    """The sink cannot take more now; try again after ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ChdbLocked(SinkError):
    """Another process owns the chdb data directory (chdb allows one process per path)."""


class QueryError(SinkError):
    """The store rejected a statement."""


class ReadOnlyViolation(QueryError):
    """A statement other than a read was sent on a read-only path."""
