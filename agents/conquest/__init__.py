"""Conquest (issue #8): build failures classified by pattern → recommendations.

Pure: :mod:`~agents.conquest.patterns` (the pattern table, :func:`classify`),
:mod:`~agents.conquest.recommend`. Kafka: :mod:`~agents.conquest.worker`
(``lvlup worker conquest``).
"""

from __future__ import annotations

from agents.conquest.patterns import PATTERNS, UNCLASSIFIED, Match, Pattern, classify
from agents.conquest.recommend import recommend

__all__ = ["PATTERNS", "UNCLASSIFIED", "Match", "Pattern", "classify", "recommend"]
