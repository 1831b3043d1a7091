"""Errors of the local stack (``lvlup up/down/status``).

Hierarchy::

    StackError                 the local stack could not be brought to the asked state
    ├── EnvironmentProblem     something to install or set on this machine (one-line fix)
    └── ServiceFailed          a service started but did not become ready / stop in time

Every message is one line saying what to install or set; the CLI prints it and exits 2.
"""

from __future__ import annotations

__all__ = ["EnvironmentProblem", "ServiceFailed", "StackError"]


class StackError(RuntimeError):
    """The local stack could not be brought to the asked state."""


class EnvironmentProblem(StackError):
    """A missing tool, a taken port, an unwritable directory: the user must act."""


class ServiceFailed(StackError):
    """A service was started but did not become ready (or did not stop) within its timeout."""
