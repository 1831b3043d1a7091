"""``lvlup custody compare A B``: two selections of custody trials compared on shared items.

The statistics and the selector grammar are shared with the API and live below both layers
(:mod:`streams.paired`: exact McNemar test, paired bootstrap percentile interval;
:mod:`streams.trialselect`: ``agent:`` / ``model:`` / ``bank:`` / ``run:`` / ``category:`` /
``tier:`` / ``window:`` terms). This module turns the log's custody records into
:class:`~streams.trialselect.Trial` values and renders the answer:

* every ``custody_item_result`` (a redelivered copy — same ``event_id`` — counts once) is one
  trial of its item;
* its run's ``custody_run_result`` gives the bank version and content hash (v2 records;
  empty for a run whose result is not on the log, which then matches no ``bank:`` term);
* its ``request_id`` (v2 item results answered through memory) names the inference request:
  the request's ``model_alias`` and the response's ``route`` and ``model_sha256`` are the
  names a ``model:`` term matches. Items without a request id have no known model.

The log is read like ``lvlup custody bank`` reads it (:func:`agents.custody.replay.read_topics`,
bounded to the end offsets at call time).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agents.custody.evidence import millis
from agents.custody.replay import read_topics
from schemas.catalog import Catalog
from schemas.codec import Codec
from streams.paired import PairedComparison
from streams.trialselect import Selector, Trial

__all__ = ["needs_models", "read_trials", "render_comparison", "trials_from_records"]

ITEM_TYPES = ("custody_item_result", "custody_run_result")
MODEL_TYPES = ("inference_request", "inference_response")


def trials_from_records(records: Iterable[tuple[str, Mapping[str, Any]]]) -> list[Trial]:
    """Trials from ``(record_type, record)`` pairs (any order; module doc). Records of other
    types are ignored. Raises :class:`KeyError` for an item result missing a field."""
    banks: dict[str, tuple[str, str]] = {}
    models: dict[str, list[str]] = {}
    items: dict[str, Mapping[str, Any]] = {}
    for record_type, rec in records:
        if record_type == "custody_item_result":
            items.setdefault(str(rec["event_id"]), rec)
        elif record_type == "custody_run_result":
            banks.setdefault(str(rec["run_id"]), (str(rec.get("bank_version") or ""),
                                                  str(rec.get("bank_hash") or "")))
        elif record_type == "inference_request":
            models.setdefault(str(rec["request_id"]), []).append(str(rec["model_alias"]))
        elif record_type == "inference_response":
            names = models.setdefault(str(rec["request_id"]), [])
            names += [str(rec["route"]), str(rec["model_sha256"])]
    out = []
    for rec in items.values():
        run_id = str(rec["run_id"])
        version, digest = banks.get(run_id, ("", ""))
        request = rec.get("request_id")
        known = models.get(str(request), []) if request else []
        answered_by = tuple(dict.fromkeys(n for n in known if n))
        out.append(Trial(item_id=str(rec["item_id"]), passed=bool(rec["passed"]),
                         agent_id=str(rec["agent_id"]), occurred_at_ms=millis(rec["occurred_at"]),
                         run_id=run_id, category=str(rec["category"]), tier=str(rec["tier"]),
                         bank_version=version, bank_hash=digest, models=answered_by))
    out.sort(key=lambda t: (t.occurred_at_ms, t.run_id, t.item_id))
    return out


def needs_models(*selectors: Selector | None) -> bool:
    """Whether any selector has a ``model:`` term (then the inference topics are read)."""
    return any(s is not None and "model" in s.values for s in selectors)


async def read_trials(bootstrap: str, codec: Codec, catalog: Catalog, *, models: bool,
                      topic_prefix: str = "") -> list[Trial]:
    """Every trial on the log (bounded read; module doc). ``models``: also read the
    inference request/response topics (needed by ``model:`` terms); ``topic_prefix`` is put
    before every catalog topic name (isolated runs and tests)."""
    types = ITEM_TYPES + (MODEL_TYPES if models else ())
    topics = [topic_prefix + catalog.for_record(rt).name for rt in types]
    return trials_from_records(await read_topics(bootstrap, codec, topics))


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render_comparison(a: str, b: str, result: PairedComparison,
                      base: str | None = None) -> str:
    """The comparison as text for a terminal: a table of both sides and the statistics,
    then the flipped items (``lost``: A passed, B did not; ``gained``: the reverse)."""
    rows: Sequence[tuple[str, str]] = [
        ("A", a + (f" [{base}]" if base else "")),
        ("B", b + (f" [{base}]" if base else "")),
        ("shared items", f"{result.shared} (only A: {result.only_a}, only B: {result.only_b})"),
        ("pass rate A", _pct(result.rate_a)),
        ("pass rate B", _pct(result.rate_b)),
        ("B − A", f"{100 * result.diff:+.1f} pts, {100 * result.level:.0f}% CI "
                  f"[{100 * result.ci_low:+.1f}, {100 * result.ci_high:+.1f}] (paired "
                  f"bootstrap, percentile, {result.resamples} resamples, seed {result.seed})"),
        ("McNemar", f"both {result.both}, neither {result.neither}, A only {result.b}, "
                    f"B only {result.c}: exact p = {result.p_value:.4g}"),
    ]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k.ljust(width)}  {v}" for k, v in rows]
    if result.flipped:
        lines.append("")
        lines.append(f"{'item'.ljust(30)}  {'A':>6}  {'B':>6}  direction")
        for item, fa, fb in result.flipped:
            lines.append(f"{item.ljust(30)}  {_pct(fa):>6}  {_pct(fb):>6}  "
                         + ("lost" if fa > 0.5 else "gained"))
    elif result.shared:
        lines.append("no item flipped")
    return "\n".join(lines)
