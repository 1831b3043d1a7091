"""Custody protocol core (issue #7): test bank, scorers, sandbox, runs, progression, gate."""

__all__: list[str] = []
