"""Bank versions and their items per category × tier (``lvlup custody bank``).

Two sources: the bank this process would run (:func:`~agents.custody.bank.load_bank`, exact
item counts), and the log — every ``custody_run_result`` v2 records the ``bank_version`` and
``bank_hash`` its items came from, so the versions that were actually used, when and how
often, are read back from ``lvlup.custody.run-results``; for a version that is no longer
packaged, the items per category × tier are the distinct item ids its runs drew (from
``lvlup.custody.item-results``, joined on ``run_id``), i.e. a lower bound. Run results written
before v2 have an empty hash and are listed as version ``(unrecorded)``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.custody.bank import Bank
from agents.custody.evidence import millis
from agents.custody.items import Category, Tier

__all__ = ["BankVersion", "bank_versions", "render_bank_versions"]

UNRECORDED = "(unrecorded)"


@dataclass(frozen=True, slots=True)
class BankVersion:
    """One bank version: its ``version`` name and ``content_hash`` (64 hex, ``""`` when not
    recorded); ``counts`` ``{category: {tier: items}}`` (every category and tier);
    ``exact``: counts from the bank itself (True) or drawn items seen in the log (False);
    ``current``: the bank this process loads; ``runs``: run results that recorded it;
    ``first_ms``/``last_ms``: their earliest/latest ``occurred_at`` (ms since the Unix epoch,
    None without runs)."""

    version: str
    content_hash: str
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    exact: bool = False
    current: bool = False
    runs: int = 0
    first_ms: int | None = None
    last_ms: int | None = None

    @property
    def total(self) -> int:
        """Items over every category and tier."""
        return sum(sum(t.values()) for t in self.counts.values())


def _empty() -> dict[str, dict[str, int]]:
    return {c.value: {t.value: 0 for t in Tier} for c in Category}


def bank_versions(
    bank: Bank | None = None,
    run_records: Iterable[Mapping[str, Any]] = (),
    item_records: Iterable[Mapping[str, Any]] = (),
) -> list[BankVersion]:
    """The current ``bank`` (if given) and every version recorded by ``run_records``
    (``custody_run_result``), keyed by content hash; ``item_records``
    (``custody_item_result``) give the items seen for versions other than the current one.
    Ordered: current first, then by first use. Redelivered records (same ``event_id``) count
    once. Pure."""
    runs_by_hash: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    names: dict[str, str] = {}
    run_hash: dict[str, str] = {}
    seen: set[str] = set()
    for rec in run_records:
        if str(rec["event_id"]) in seen:
            continue
        seen.add(str(rec["event_id"]))
        digest = str(rec.get("bank_hash") or "")
        runs_by_hash[digest].append(rec)
        names.setdefault(digest, str(rec.get("bank_version") or UNRECORDED))
        run_hash[str(rec["run_id"])] = digest
    drawn: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for rec in item_records:
        of_run = run_hash.get(str(rec["run_id"]))
        if of_run is not None:
            drawn[of_run][f"{rec['category']}\x1f{rec['tier']}"].add(str(rec["item_id"]))
    out: list[BankVersion] = []
    current = bank.content_hash if bank is not None else None
    hashes = sorted(runs_by_hash, key=lambda h: min(millis(r["occurred_at"])
                                                    for r in runs_by_hash[h]))
    if bank is not None and current is not None:
        hashes = [current, *(h for h in hashes if h != current)]
    for digest in hashes:
        runs = runs_by_hash.get(digest, [])
        when = [millis(r["occurred_at"]) for r in runs]
        if bank is not None and digest == current:
            counts, exact, version = bank.counts(), True, bank.version
        else:
            counts, exact, version = _empty(), False, names.get(digest, UNRECORDED)
            for key, ids in drawn.get(digest, {}).items():
                category, tier = key.split("\x1f")
                counts.setdefault(category, {})[tier] = len(ids)
        out.append(BankVersion(version, digest, counts, exact, digest == current, len(runs),
                               min(when) if when else None, max(when) if when else None))
    return out


def render_bank_versions(versions: Iterable[BankVersion]) -> str:
    """Plain-text table per version: a header line (version, hash prefix, current, runs) and
    items per category (rows) × tier (columns) with totals. For ``lvlup custody bank``."""
    tiers = [t.value for t in Tier]
    blocks = []
    for v in versions:
        head = (f"bank {v.version}  sha256 {v.content_hash[:16] or '-'}"
                f"{'  (current)' if v.current else ''}  runs {v.runs}"
                f"  items {v.total}{'' if v.exact else ' (drawn, lower bound)'}")
        width = max(len(c) for c in v.counts) if v.counts else 8
        rows = [f"  {'category':<{width}}  " + " ".join(f"{t[:5]:>5}" for t in tiers)
                + "  total"]
        for category, by_tier in v.counts.items():
            cells = " ".join(f"{by_tier.get(t, 0):>5}" for t in tiers)
            rows.append(f"  {category:<{width}}  {cells}  {sum(by_tier.values()):>5}")
        blocks.append("\n".join([head, *rows]))
    return "\n\n".join(blocks)
