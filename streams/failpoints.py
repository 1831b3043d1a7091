"""Failpoints: named points where a fault-injection run (``lvlup chaos``) makes a process fail.

Library code is given a :class:`Failpoints` by its process's root and asks
``failpoints.fire(owner, point)`` where a crash is to be simulated (the API's
``api.before_publish`` / ``api.after_publish``, :mod:`api.commands`). Production roots pass
:data:`NO_FAILPOINTS`: it never fires and costs no system call. The armed implementation (a
file per point) belongs to the chaos run, :mod:`infra.chaos.failpoints`.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["NO_FAILPOINTS", "Failpoints", "NoFailpoints"]


class Failpoints(Protocol):
    """Decides whether a failpoint fires now."""

    def fire(self, owner: str, point: str) -> bool:
        """True when ``owner``'s ``point`` (e.g. ``"api"``, ``"before_publish"``) is armed;
        consumes the arming."""
        ...


class NoFailpoints:
    """Failpoints that never fire (production)."""

    def fire(self, owner: str, point: str) -> bool:
        """Always False."""
        return False


NO_FAILPOINTS: Failpoints = NoFailpoints()
"""The default of every process: no fault injection."""
