"""Errors of the ``agents.custody`` package.

Hierarchy::

    CustodyError            base
    ├── BankError           the test bank data is malformed (poison: fix the data, don't retry)
    └── SandboxError        the sandbox could not be set up (retryable: environment problem)

A wrong or malicious *answer* is never an error: scorers return a failing
:class:`~agents.custody.items.ScoreResult`, and the sandbox reports limits it enforced in
:class:`~agents.custody.sandbox.SandboxResult`. Third-party errors (PyYAML, jsonschema, bandit)
are translated at the boundary with ``raise … from exc``.
"""

from __future__ import annotations

__all__ = ["BankError", "CustodyError", "SandboxError"]


class CustodyError(Exception):
    """Base class of every error raised by ``agents.custody``."""


class BankError(CustodyError):
    """A test-bank file or item is malformed (unknown scorer kind, missing params, bad tier)."""


class SandboxError(CustodyError):
    """The sandbox could not start the child (missing interpreter, namespace setup failed)."""
