"""The ``lvlup`` command (../shared/DESIGN.md, "The lvlup command")."""

from streams.cli.app import build_app, main

__all__ = ["build_app", "main"]
