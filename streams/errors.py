"""Errors of the ``streams`` package (settings, producer SDK, CLI input).

Hierarchy::

    LvlupError                one-line, user-actionable failure; the CLI prints it, exits 2
"""

from __future__ import annotations

__all__ = ["LvlupError"]


class LvlupError(RuntimeError):
    """A failure the user can act on; its message is one line."""
