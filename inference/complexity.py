"""Task complexity: a documented heuristic that sends easy requests to the local model.

Used for the model name ``auto`` (the OpenAI-compatible front door, :mod:`api.openai`) until
the online models' latency/token predictor replaces it. :func:`complexity` scores a request
from 0 (trivial) to 1 (hard) by adding, capped at 1:

==============================  ======================================================
signal                          points
==============================  ======================================================
prompt length                   0.35 × min(1, estimated tokens / 1500) (≈ 4 chars/token)
code in the prompt              0.20 (a fenced block, or ``def``/``class``/``{``…``}``)
reasoning words                 0.10 each, at most 0.30 (explain, why, prove, compare,
                                analyse, design, derive, step by step, optimise, debug,
                                refactor, trade-off)
a long conversation             0.10 (more than 4 turns)
a long answer asked for         0.15 (``max_tokens`` > 512)
structured output               0.10 (a JSON schema)
==============================  ======================================================

:func:`pick_alias` sends a score ≥ ``threshold`` (default 0.5) to the first cloud alias that
is configured, else to ``local``. The weights are a rule of thumb, not fitted: the idea that
prompt length and kind predict when a small model suffices is RouteLLM's (Ong et al. 2024,
arXiv:2406.18665), whose learned routers this does not reproduce. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["AUTO_ALIAS", "Complexity", "complexity", "pick_alias"]

AUTO_ALIAS = "auto"
"""The model name that asks the front door to choose by complexity."""

_REASONING = re.compile(
    r"\b(explain|why|prove|compare|analy[sz]e|design|derive|step[- ]by[- ]step|optimi[sz]e|"
    r"debug|refactor|trade-?offs?)\b", re.IGNORECASE)
_CODE = re.compile(r"```|\bdef \w+\(|\bclass \w+|\{[^{}\n]*;[^{}\n]*\}")


@dataclass(frozen=True, slots=True)
class Complexity:
    """A score in [0, 1] and the signals that made it (name → points)."""

    score: float
    signals: dict[str, float]


def complexity(texts: Sequence[str], *, max_tokens: int, structured: bool = False,
               ) -> Complexity:
    """Score the request whose message contents are ``texts`` (see the module table)."""
    joined = "\n".join(texts)
    signals: dict[str, float] = {}
    tokens = len(joined) / 4.0
    signals["length"] = round(0.35 * min(1.0, tokens / 1500.0), 4)
    if _CODE.search(joined):
        signals["code"] = 0.20
    words = {m.group(0).lower() for m in _REASONING.finditer(joined)}
    if words:
        signals["reasoning"] = min(0.30, 0.10 * len(words))
    if len(texts) > 4:
        signals["conversation"] = 0.10
    if max_tokens > 512:
        signals["long_answer"] = 0.15
    if structured:
        signals["structured"] = 0.10
    return Complexity(min(1.0, round(sum(signals.values()), 4)), signals)


def pick_alias(score: Complexity, cloud_aliases: Sequence[str], *, threshold: float = 0.5,
               local: str = "local") -> str:
    """``cloud_aliases[0]`` when ``score.score >= threshold`` and one exists, else ``local``."""
    if score.score >= threshold and cloud_aliases:
        return cloud_aliases[0]
    return local
