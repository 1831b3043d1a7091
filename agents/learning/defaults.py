"""The seed's built-in agents, their default learning topics, and the default sources."""

from __future__ import annotations

__all__ = ["BUILTIN_TOPICS", "DEFAULT_SOURCE_PACKAGES"]

BUILTIN_TOPICS: dict[str, tuple[str, ...]] = {
    "imperium": ("meta-learning AI", "autonomous agent orchestration", "AI self-improvement",
                 "AI governance"),
    "guardian": ("AI security best practices", "AI code quality", "vulnerability detection",
                 "secure coding"),
    "sandbox": ("AI experimentation", "novel ML techniques", "rapid prototyping AI",
                "AI innovation"),
    "conquest": ("app development AI", "AI-driven app design", "mobile AI frameworks",
                 "AI UX optimization"),
}
"""The seed's default topics per built-in agent (the Imperium orchestrator)."""

DEFAULT_SOURCE_PACKAGES: tuple[str, ...] = (
    "bandit", "faust-streaming", "aiokafka", "fastavro", "litellm", "starlette", "httpx",
    "tenacity", "pydantic", "sqlalchemy", "structlog", "chdb", "llama-cpp-python",
)
"""Installed packages whose documentation (their METADATA long description) is the demo's
offline corpus of trusted documents: real text, no network needed."""
