"""Exceptions raised by guardian.

Tree::

    GuardianError
    ├── ScanInputError (ValueError)   poison: the input can never be scanned (bad path, too big)
    │   └── TooManyFiles              a tree holds more files than the scan is allowed to read
    └── ScannerFailed                 retryable: a scanner crashed or timed out on valid input
"""

from __future__ import annotations

__all__ = ["GuardianError", "ScanInputError", "ScannerFailed", "TooManyFiles"]


class GuardianError(Exception):
    """Base class of every error guardian raises."""


class ScanInputError(GuardianError, ValueError):
    """The files given cannot be scanned (unsafe path, over a size bound); do not retry."""


class TooManyFiles(ScanInputError):
    """A tree scan matched more files than ``max_files``."""


class ScannerFailed(GuardianError):
    """A scanner (bandit, detect-secrets, ruff) failed; ``tool`` names it. May be retried."""

    def __init__(self, tool: str, reason: str) -> None:
        super().__init__(f"{tool}: {reason}")
        self.tool = tool
        self.reason = reason
