"""A basic, configurable input/output filter – not a content-moderation model.

Checks, in order: total length in characters, operator-supplied blocked patterns, and
prompt-injection markers (phrases such as "ignore all previous instructions" and chat-template
control tokens a user should never send, e.g. Gemma's ``<start_of_turn>``). Patterns are
Python regular expressions, matched case-insensitively anywhere in the text. Such lists are
easy to evade (paraphrase, encoding, other languages): treat a pass as "nothing obvious", and
put a real moderation step in front of anything user-facing.

Injection markers are checked on input only; outputs are checked for length and blocked
patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["DEFAULT_INJECTION_MARKERS", "SafetyFilter", "SafetyPolicy", "SafetyVerdict"]

DEFAULT_INJECTION_MARKERS: tuple[str, ...] = (
    r"\bignore\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above)\s+(instructions|prompts?)",
    r"\bdisregard\s+(all\s+|any\s+)?(the\s+)?(previous|prior|above|system)\b",
    r"\byou\s+are\s+now\s+(DAN|in\s+developer\s+mode)\b",
    r"\breveal\s+(your|the)\s+system\s+prompt\b",
    r"<start_of_turn>|<end_of_turn>|<\|im_start\|>|<\|im_end\|>|<\|eot_id\|>|\[/?INST\]",
)

Rule = Literal["max_length", "blocked_pattern", "prompt_injection"]


class SafetyPolicy(BaseModel):
    """Limits and pattern lists of the filter."""

    max_input_chars: int = Field(default=100_000, ge=1, description="all messages together")
    max_output_chars: int = Field(default=100_000, ge=1, description="generated text")
    blocked_patterns: tuple[str, ...] = Field(
        default=(), description="regexes refused in input and output (case-insensitive)"
    )
    injection_markers: tuple[str, ...] = Field(
        default=DEFAULT_INJECTION_MARKERS, description="regexes refused in input"
    )


@dataclass(frozen=True, slots=True)
class SafetyVerdict:
    """``allowed`` or not; when not, the ``rule`` that fired and a one-line ``reason``."""

    allowed: bool
    rule: Rule | None = None
    reason: str | None = None


ALLOWED = SafetyVerdict(allowed=True)


class SafetyFilter:
    """Compiles the policy's patterns once. Raises ``re.error`` for an invalid pattern."""

    def __init__(self, policy: SafetyPolicy | None = None) -> None:
        self.policy = policy or SafetyPolicy()
        self._blocked = [re.compile(p, re.IGNORECASE) for p in self.policy.blocked_patterns]
        self._injection = [re.compile(p, re.IGNORECASE) for p in self.policy.injection_markers]

    def check_input(self, texts: Iterable[str]) -> SafetyVerdict:
        """Verdict on the contents of a request's messages."""
        texts = list(texts)
        size = sum(len(t) for t in texts)
        if size > self.policy.max_input_chars:
            return SafetyVerdict(
                False,
                "max_length",
                f"input is {size} characters (max {self.policy.max_input_chars})",
            )
        checks: tuple[tuple[Rule, list[re.Pattern[str]]], ...] = (
            ("blocked_pattern", self._blocked),
            ("prompt_injection", self._injection),
        )
        for rule, patterns in checks:
            hit = _first_match(patterns, texts)
            if hit is not None:
                return SafetyVerdict(False, rule, f"input matches {hit!r}")
        return ALLOWED

    def check_output(self, text: str) -> SafetyVerdict:
        """Verdict on generated text."""
        if len(text) > self.policy.max_output_chars:
            return SafetyVerdict(
                False,
                "max_length",
                f"output is {len(text)} characters (max {self.policy.max_output_chars})",
            )
        hit = _first_match(self._blocked, [text])
        if hit is not None:
            return SafetyVerdict(False, "blocked_pattern", f"output matches {hit!r}")
        return ALLOWED


def _first_match(patterns: list[re.Pattern[str]], texts: list[str]) -> str | None:
    for pattern in patterns:
        for text in texts:
            if pattern.search(text):
                return pattern.pattern
    return None
