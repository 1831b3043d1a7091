"""The seed's default sources, and the built-in agents' default learning topics (defined in
:mod:`schemas.commands`, shared with the front ends)."""

from __future__ import annotations

from schemas.commands import BUILTIN_TOPICS

__all__ = ["BUILTIN_TOPICS", "DEFAULT_SOURCE_PACKAGES"]

DEFAULT_SOURCE_PACKAGES: tuple[str, ...] = (
    "bandit", "faust-streaming", "aiokafka", "fastavro", "litellm", "starlette", "httpx",
    "tenacity", "pydantic", "sqlalchemy", "structlog", "chdb", "llama-cpp-python",
)
"""Installed packages whose documentation (their METADATA long description) is the demo's
offline corpus of trusted documents: real text, no network needed."""
