"""The custody policy as data: SPRT parameters, evidence window, XP table, level curve, gate.

A policy is a YAML file (``v1.yaml`` in this package is the default; see its comments for the
numbers and why)::

    version: custody-v1
    sprt: {p0: 0.5, p1: 0.8, alpha: 0.05, beta: 0.10}     # agents.custody.sprt
    evidence: {window_days: 14}
    xp: {per_item: {basic: 10, …, legendary: 120}, level_step: 50}
    gate: {categories: [code_quality, security_awareness], by_proposal_category: {}}

:attr:`CustodyPolicy.ref` (``version@<first 12 hex of the file's SHA-256>``) is what records
cite, so two files with the same ``version`` but different content are told apart.

**Level curve.** Reaching level ``L`` takes ``level_step · L · (L − 1) / 2`` XP in total: each
level costs ``level_step`` more than the one before (the triangular curve of the d20 System,
Dungeons & Dragons 3rd edition Player's Handbook, Table 3–2, scaled 1000 → 50). Since the XP
per item grows about as fast as a tier's first level, a level costs 5–50 passed items in every
tier (basic level 1→2: 5 items, 9→10: 45; intermediate 10→11: 25, 19→20: 48), so progress
neither stalls at the top tiers nor races through the bottom ones.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agents.custody.errors import CustodyError
from agents.custody.items import Category, Tier
from agents.custody.sprt import SprtParams

__all__ = ["DAY_MS", "CustodyPolicy", "PolicyError", "load_policy", "parse_policy"]

DAY_MS = 86_400_000


class PolicyError(CustodyError):
    """A policy file that cannot be read or does not validate (poison: fix the file)."""


@dataclass(frozen=True, slots=True)
class CustodyPolicy:
    """A validated policy. ``window_ms``: evidence window (milliseconds); ``tier_xp``: XP per
    passed item by tier; ``level_step``: the curve's step (XP); ``gate_categories``: custody
    categories a proposal's agent must pass; ``by_proposal_category``: overrides by proposal
    category; ``digest``: SHA-256 (hex) of the source text."""

    version: str
    sprt: SprtParams
    window_ms: int
    tier_xp: Mapping[Tier, int]
    level_step: int
    gate_categories: tuple[Category, ...]
    by_proposal_category: Mapping[str, tuple[Category, ...]] = field(default_factory=dict)
    digest: str = ""

    @property
    def ref(self) -> str:
        """``version@digest12``: the policy's identity as records cite it."""
        return f"{self.version}@{self.digest[:12]}" if self.digest else self.version

    def required_categories(self, proposal_category: str | None = None) -> tuple[Category, ...]:
        """Categories a proposal (of ``proposal_category``, if any) needs passed evidence in."""
        if proposal_category and proposal_category in self.by_proposal_category:
            return self.by_proposal_category[proposal_category]
        return self.gate_categories

    def xp_to_reach(self, level: int) -> int:
        """Total XP needed to reach ``level`` (0 for level 1 and below)."""
        return self.level_step * level * (level - 1) // 2 if level > 1 else 0

    def level_for_xp(self, xp: int) -> int:
        """The highest level whose threshold ``xp`` reaches (at least 1)."""
        # root of step·L(L−1)/2 = xp, then corrected for floating point
        level = max(1, int((1 + math.sqrt(1 + 8 * max(xp, 0) / self.level_step)) / 2))
        while self.xp_to_reach(level + 1) <= xp:
            level += 1
        while level > 1 and self.xp_to_reach(level) > xp:
            level -= 1
        return level


def _need(raw: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = raw.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PolicyError(f"{where}: '{key}' must be a {kind}, got {value!r}")
    return value


def _categories(raw: Any, where: str) -> tuple[Category, ...]:
    if not isinstance(raw, list) or not raw:
        raise PolicyError(f"{where}: expected a non-empty list of custody categories")
    try:
        return tuple(Category(c) for c in raw)
    except ValueError as exc:
        raise PolicyError(f"{where}: {exc}") from exc


def parse_policy(text: str, *, where: str = "<policy>") -> CustodyPolicy:
    """Parse and validate policy YAML ``text``. Raises :class:`PolicyError` naming ``where``
    and the offending key on any problem (bad YAML, missing keys, out-of-range numbers)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{where}: {exc}") from exc
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping")
    version = _need(raw, "version", str, where)
    sprt_raw = _need(raw, "sprt", dict, where)
    try:
        sprt = SprtParams(*(float(_need(sprt_raw, k, (int, float), f"{where}: sprt"))
                            for k in ("p0", "p1", "alpha", "beta")))
    except ValueError as exc:
        raise PolicyError(f"{where}: sprt: {exc}") from exc
    days = _need(_need(raw, "evidence", dict, where), "window_days", (int, float), where)
    xp_raw = _need(raw, "xp", dict, where)
    per_item = _need(xp_raw, "per_item", dict, f"{where}: xp")
    if set(per_item) != {t.value for t in Tier} or not all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in per_item.values()):
        raise PolicyError(f"{where}: xp.per_item needs a positive int for every tier")
    step = _need(xp_raw, "level_step", int, f"{where}: xp")
    gate = _need(raw, "gate", dict, where)
    by_cat = gate.get("by_proposal_category") or {}
    if days <= 0 or step <= 0 or not isinstance(by_cat, dict):
        raise PolicyError(f"{where}: window_days and level_step must be > 0, "
                          "by_proposal_category a mapping")
    return CustodyPolicy(
        version=version, sprt=sprt, window_ms=int(days * DAY_MS),
        tier_xp={Tier(t): int(v) for t, v in per_item.items()}, level_step=step,
        gate_categories=_categories(gate.get("categories"), f"{where}: gate.categories"),
        by_proposal_category={str(k): _categories(v, f"{where}: gate.by_proposal_category.{k}")
                              for k, v in by_cat.items()},
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest())


@functools.lru_cache(maxsize=8)
def _load_text(path: str | None) -> tuple[str, str]:
    try:
        if path is None:
            return resources.files(__name__).joinpath("v1.yaml").read_text("utf-8"), "v1.yaml"
        return Path(path).read_text(encoding="utf-8"), path
    except OSError as exc:
        raise PolicyError(f"{path or 'v1.yaml'}: {exc}") from exc


def load_policy(path: str | Path | None = None) -> CustodyPolicy:
    """The policy in ``path`` (a YAML file), or the packaged default (``v1.yaml``) when None.

    Reads are cached per path. Raises :class:`PolicyError` if the file cannot be read or does
    not validate.
    """
    text, where = _load_text(None if path is None else str(path))
    return parse_policy(text, where=where)
