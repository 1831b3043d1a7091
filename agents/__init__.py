"""Faust agents: learning, custody, proposals, guardian, sandbox, conquest.

Each agent is a thin ``async for`` loop over pure functions on typed records.
"""

__all__: list[str] = []
