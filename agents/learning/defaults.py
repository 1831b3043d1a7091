"""The seed's default sources, and the built-in agents' default learning topics (defined in
:mod:`schemas.commands`, shared with the front ends)."""

from __future__ import annotations

from schemas.commands import BUILTIN_TOPICS

__all__ = ["BUILTIN_TOPICS", "DEFAULT_DOC_MODULES", "DEFAULT_SOURCES", "DEFAULT_SOURCE_PACKAGES"]

DEFAULT_SOURCE_PACKAGES: tuple[str, ...] = (
    "bandit", "faust-streaming", "aiokafka", "fastavro", "litellm", "starlette", "httpx",
    "tenacity", "pydantic", "sqlalchemy", "structlog", "chdb", "llama-cpp-python",
)
"""Installed packages whose documentation (their METADATA long description) is the demo's
offline corpus of trusted documents: real text, no network needed."""

DEFAULT_DOC_MODULES: tuple[str, ...] = (
    "bandit.plugins", "subprocess", "tempfile", "ssl", "hashlib", "secrets", "timeit",
    "functools", "cProfile", "asyncio",
)
"""Installed modules whose docstrings (``pydoc:`` sources, read without importing them)
cover the agents' topics: bandit's rule plugins and the standard library's security modules
(guardian), timing and caching (conquest), concurrency (imperium, sandbox)."""

DEFAULT_SOURCES: tuple[str, ...] = (
    *(f"package:{p}" for p in DEFAULT_SOURCE_PACKAGES),
    *(f"pydoc:{m}" for m in DEFAULT_DOC_MODULES),
)
"""Every default trusted source URL (the offline corpus ``lvlup run`` registers)."""
