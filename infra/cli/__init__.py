"""The ``lvlup`` command (README.md, "The lvlup command")."""

from infra.cli.app import build_app, main

__all__ = ["build_app", "main"]
