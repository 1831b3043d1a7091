"""Errors of the ``agents.custody`` package.

Hierarchy::

    CustodyError            base
    ├── BankError           the test bank data is malformed (poison: fix the data, don't retry)
    ├── RunVoided           a trial could not be judged (inference outage, sandbox refused):
    │                       the run is voided — nothing emitted — and retried later
    └── SandboxError        the sandbox could not run the code (retryable: environment problem)
        └── SandboxUnavailable  isolation cannot be set up here (no bwrap, no writable
                                cgroups, no libseccomp, bwrap refused): the run is refused,
                                never downgraded; a custody trial is voided, not failed

A wrong or malicious *answer* is never an error: scorers return a failing
:class:`~agents.custody.items.ScoreResult`, and the sandbox reports limits it enforced in
:class:`~agents.custody.sandbox.SandboxResult`. Third-party errors (PyYAML, jsonschema, bandit)
are translated at the boundary with ``raise … from exc``.
"""

from __future__ import annotations

__all__ = ["BankError", "CustodyError", "RunVoided", "SandboxError", "SandboxUnavailable"]


class CustodyError(Exception):
    """Base class of every error raised by ``agents.custody``."""


class BankError(CustodyError):
    """A test-bank file or item is malformed (unknown scorer kind, missing params, bad tier)."""


class RunVoided(CustodyError):
    """A trial could not be judged, through no fault of the agent: the whole run is void.

    ``reason`` is ``"inference_unavailable"`` or ``"sandbox_unavailable"``. Retryable: the
    worker retries the request with back-off and, if it stays void, ends uncommitted so the
    request is redelivered. A void trial is never recorded as a failed one.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class SandboxError(CustodyError):
    """The sandbox could not run the child (missing interpreter, the run's setup failed)."""


class SandboxUnavailable(SandboxError):
    """Isolation cannot be set up, so the run is refused (fail closed).

    Raised before any untrusted code runs: bubblewrap missing or failing to build the
    sandbox, cgroups (v1 ``memory`` + ``pids`` or v2) not writable, libseccomp missing.
    ``reason`` is a short machine-readable cause (``"no_bwrap"``, ``"bwrap_failed"``,
    ``"no_cgroups"``, ``"no_seccomp"``); the message says what to do.
    """

    def __init__(self, message: str, reason: str = "sandbox_unavailable") -> None:
        super().__init__(message)
        self.reason = reason
