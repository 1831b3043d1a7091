"""``GET /api/custody/compare?a=…&b=…``: two selections of custody trials on shared items.

The same answer as ``lvlup custody compare`` (selectors: :mod:`streams.trialselect`;
statistics: :mod:`streams.paired` — exact McNemar test, paired bootstrap percentile
interval, flipped items), read from ClickHouse's ``events`` table (FINAL: a redelivered
record counts once) instead of the log: item results joined with their run's bank version and
hash, and with the names of the model that answered (inference request alias, response route
and model SHA-256) when a selector has a ``model:`` term. A selector that does not parse is
answered ``400 bad_selector`` with ``details: {"param", "term"}``; more than
:data:`MAX_TRIALS` trials in the selection's coarse filter (agents, window) is ``422
too_many_trials`` — narrow the selectors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api.errors import ApiError
from api.operations import Call, Operation
from api.reads import clickhouse_read, sql_literal
from api.shapes import obj, view_answer
from streams.paired import DEFAULT_RESAMPLES, DEFAULT_SEED
from streams.trialselect import Selector, SelectorError, Trial, compare_selected, parse_selector

__all__ = ["MAX_TRIALS", "CompareQuery", "operations"]

#: trials read per request at most (the coarse filter's rows)
MAX_TRIALS = 200_000


class CompareQuery(BaseModel):
    """Query parameters: selectors ``a``, ``b`` and ``where`` (both sides), bootstrap
    ``resamples``, ``seed`` and interval ``level``."""

    model_config = ConfigDict(extra="ignore")

    a: str = Field(min_length=1, max_length=1000, description="selector A")
    b: str = Field(min_length=1, max_length=1000, description="selector B")
    where: str | None = Field(default=None, min_length=1, max_length=1000,
                              description="selector both sides must also match")
    resamples: int = Field(default=DEFAULT_RESAMPLES, ge=100, le=50_000,
                           description="bootstrap resamples")
    seed: int = Field(default=DEFAULT_SEED, ge=0, le=2**62, description="bootstrap seed")
    level: float = Field(default=0.95, ge=0.5, le=0.999, description="interval level")


def _parse(param: str, text: str) -> Selector:
    try:
        return parse_selector(text)
    except SelectorError as exc:
        raise ApiError(400, "bad_selector", str(exc),
                       {"param": param, "term": exc.term}) from exc


def _coarse(selectors: list[Selector], base: Selector | None) -> str:
    """SQL conditions every selected trial meets (agents and window when both sides name
    them, or the base does)."""
    parts: list[str] = []
    for group in ([base] if base is not None else []) + [None]:
        sides = [group] if group is not None else selectors
        if all(s.agents for s in sides):
            names = sorted({a for s in sides for a in s.agents})
            parts.append(f"agent_id IN ({', '.join(sql_literal(n) for n in names)})")
        if all(s.since_ms is not None for s in sides):
            parts.append(f"occurred_at >= fromUnixTimestamp64Milli("
                         f"{min(int(s.since_ms or 0) for s in sides)}, 'UTC')")
        if all(s.until_ms is not None for s in sides):
            parts.append(f"occurred_at < fromUnixTimestamp64Milli("
                         f"{max(int(s.until_ms or 0) for s in sides)}, 'UTC')")
    return "".join(f" AND {p}" for p in parts)


def _sql(db: str, where: str, models: bool) -> str:
    model_join = (
        " LEFT JOIN (SELECT JSONExtractString(payload, 'request_id') AS request_id, "  # noqa: S608
        "groupUniqArrayArray([JSONExtractString(payload, 'model_alias'), "
        "JSONExtractString(payload, 'route'), JSONExtractString(payload, 'model_sha256')]) "
        f"AS models FROM {db}.events FINAL WHERE record_type IN "
        "('inference_request', 'inference_response') GROUP BY request_id) AS m "
        "ON i.request_id = m.request_id") if models else ""
    return (
        "SELECT i.agent_id AS agent_id, i.at_ms AS at_ms, i.run_id AS run_id, "  # noqa: S608
        "i.item_id AS item_id, i.passed AS passed, i.category AS category, i.tier AS tier, "
        "r.bank_version AS bank_version, r.bank_hash AS bank_hash"
        + (", m.models AS models" if models else "") +
        " FROM (SELECT agent_id, toUnixTimestamp64Milli(occurred_at) AS at_ms, "  # noqa: S608
        "JSONExtractString(payload, 'run_id') AS run_id, "
        "JSONExtractString(payload, 'item_id') AS item_id, "
        "JSONExtractBool(payload, 'passed') AS passed, "
        "JSONExtractString(payload, 'category') AS category, "
        "JSONExtractString(payload, 'tier') AS tier, "
        "JSONExtractString(payload, 'request_id') AS request_id "
        f"FROM {db}.events FINAL WHERE record_type = 'custody_item_result'{where}) AS i "
        "LEFT JOIN (SELECT JSONExtractString(payload, 'run_id') AS run_id, "
        "any(JSONExtractString(payload, 'bank_version')) AS bank_version, "
        "any(JSONExtractString(payload, 'bank_hash')) AS bank_hash "
        f"FROM {db}.events FINAL WHERE record_type = 'custody_run_result' GROUP BY run_id) "
        f"AS r ON i.run_id = r.run_id{model_join} "
        f"ORDER BY at_ms, run_id, item_id LIMIT {MAX_TRIALS + 1} "
        "SETTINGS join_use_nulls = 0, output_format_json_quote_64bit_integers = 0")


def _trial(row: dict[str, Any]) -> Trial:
    models = tuple(m for m in (row.get("models") or ()) if m)
    return Trial(item_id=str(row["item_id"]), passed=bool(row["passed"]),
                 agent_id=str(row["agent_id"]), occurred_at_ms=int(row["at_ms"]),
                 run_id=str(row["run_id"]), category=str(row["category"]),
                 tier=str(row["tier"]), bank_version=str(row.get("bank_version") or ""),
                 bank_hash=str(row.get("bank_hash") or ""), models=models)


async def _compare(call: Call) -> dict[str, Any]:
    q: CompareQuery = call.query
    a, b = _parse("a", q.a), _parse("b", q.b)
    base = _parse("where", q.where) if q.where is not None else None
    models = any(s is not None and "model" in s.values for s in (a, b, base))
    record_types = ["custody_item_result", "custody_run_result"]
    if models:
        record_types += ["inference_request", "inference_response"]
    db = call.state.settings.clickhouse.database
    result, mark = await clickhouse_read(call, record_types,
                                         _sql(db, _coarse([a, b], base), models))
    rows = result.dicts()
    if len(rows) > MAX_TRIALS:
        raise ApiError(422, "too_many_trials",
                       f"the selection reads more than {MAX_TRIALS} trials: name agents or a "
                       "window in both selectors (or in where)", {"limit": MAX_TRIALS})
    answer = compare_selected([_trial(r) for r in rows], a, b, base, resamples=q.resamples,
                              seed=q.seed, level=q.level)
    return {"a": a.text, "b": b.text, "where": base.text if base else None,
            **answer.to_json(), "watermark": mark}


def operations() -> list[Operation]:
    """The comparison read."""
    num, integer, string = {"type": "number"}, {"type": "integer"}, {"type": "string"}
    flip = obj({"item_id": string, "a": num, "b": num, "direction": string})
    answer = view_answer({
        "a": string, "b": string, "where": {"type": ["string", "null"]},
        "shared": integer, "only_a": integer, "only_b": integer, "rate_a": num,
        "rate_b": num, "diff": num,
        "ci": obj({"low": num, "high": num, "level": num, "method": string,
                   "resamples": integer, "seed": integer}),
        "mcnemar": obj({"both": integer, "neither": integer, "a_only": integer,
                        "b_only": integer, "p_value": num, "exact": {"type": "boolean"}}),
        "flipped": {"type": "array", "items": flip}})
    return [Operation(
        "GET", "/api/custody/compare", _compare,
        "Compare two selections of custody trials on shared items: exact McNemar test, "
        "paired bootstrap interval, flipped items", "custody", answer,
        query_model=CompareQuery, statuses=(400, 401, 403, 422, 429, 503), cacheable=True,
        description="Selectors: comma-separated terms agent:ID, model:NAME, bank:VERSION, "
                    "run:ID, category:NAME, tier:NAME, window:FROM..TO (docs/CUSTODY.md).")]
