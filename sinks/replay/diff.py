"""``lvlup replay diff``: replay a window under the current code and diff it against live.

The window ``[--from, --to)`` (Kafka record time) is replayed by :mod:`sinks.replay.engine`
with the code under test — the Postgres projections and a rescoring step (by default the
custody verdicts re-derived with the current scoring function, :func:`custody_rescorer`) —
and compared with the live views over the same offsets. The report gives, per view, rows
added / removed / changed (with examples and the columns that changed), per agent the rows
that moved and how its numeric totals moved (shadow − live), and the custody verdict flips.
Rendered as Markdown or JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from sinks.clickhouse.client import ClickHouse
from sinks.records import ConsumedRecord
from sinks.replay.certificate import git_sha
from sinks.replay.compare import ViewComparison
from sinks.replay.engine import Outcome, ReplayCode, ReplayRequest, Rescorer, describe, run_replay
from streams.settings import Settings
from streams.wiring import Wiring

__all__ = ["DiffReport", "VerdictFn", "changed_columns", "custody_rescorer", "render_markdown",
           "replay_diff", "summarize"]

#: ``(items passed, items total) -> (verdict, wilson lower, wilson upper)``, the signature of
#: :func:`agents.custody.runs.verdict_for`.
VerdictFn = Callable[[int, int], tuple[str, float, float]]
_NOT_MEASURES = {"src_partition", "src_offset", "partition", "offset", "schema_version", "seed",
                 "epoch", "line"}
EXAMPLES = 5


def custody_rescorer(verdict: VerdictFn) -> Rescorer:
    """A rescoring step that re-derives each ``custody_run_result``'s ``verdict`` and
    ``wilson_lower`` from its item counts with ``verdict`` (the scoring code under test);
    other records pass unchanged."""

    def rescore(rec: ConsumedRecord) -> ConsumedRecord:
        if rec.record_type != "custody_run_result":
            return rec
        r = rec.record
        got, lower, _upper = verdict(int(r["items_passed"]), int(r["items_total"]))
        if got == str(r["verdict"]) and lower == r["wilson_lower"]:
            return rec
        return dataclasses.replace(rec, record={**r, "verdict": got, "wilson_lower": lower})

    return rescore


@dataclass
class DiffReport:
    """What the replayed window changes. ``views``: per view counts and examples;
    ``agents``: per agent and view, rows added/removed/changed and ``deltas`` (shadow − live
    sums of numeric columns over those rows); ``verdict_flips``: custody runs whose verdict
    differs; ``reinfer``: the re-inference comparison when asked for."""

    window: dict[str, str | None]
    code_version: str
    stores: dict[str, Any]
    views: dict[str, dict[str, Any]] = field(default_factory=dict)
    agents: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    verdict_flips: list[dict[str, Any]] = field(default_factory=list)
    reinfer: dict[str, Any] | None = None
    details_truncated: bool = False

    @property
    def changes(self) -> int:
        """Rows added, removed or changed over every view."""
        return sum(v["added"] + v["removed"] + v["changed"] for v in self.views.values())

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"changes": self.changes, **dataclasses.asdict(self)}


def _flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row with a parsed ClickHouse ``payload`` flattened to ``payload.<field>``."""
    out = {k: v for k, v in row.items() if k != "payload"}
    payload = row.get("payload")
    if isinstance(payload, dict):
        out.update({f"payload.{k}": v for k, v in payload.items()})
    elif payload is not None:
        out["payload"] = payload
    return out


def changed_columns(live: Mapping[str, Any] | None,
                    shadow: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    """``{column: [live, shadow]}`` of the columns whose values differ (a missing row has
    every column None)."""
    a, b = _flat(live or {}), _flat(shadow or {})
    return {k: [a.get(k), b.get(k)] for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _agent(live: Mapping[str, Any] | None, shadow: Mapping[str, Any] | None) -> str | None:
    for row in (shadow, live):
        if row and row.get("agent_id"):
            return str(row["agent_id"])
    return None


def _flip(view: str, live: Mapping[str, Any] | None,
          shadow: Mapping[str, Any] | None) -> dict[str, Any] | None:
    a, b = _flat(live or {}), _flat(shadow or {})
    field_name = "payload.verdict" if view == "clickhouse.events" else "verdict"
    if not a or not b or field_name not in a or a.get(field_name) == b.get(field_name):
        return None
    run_id = a.get("run_id") or a.get("payload.run_id")
    return {"run_id": run_id, "agent_id": _agent(live, shadow),
            "category": a.get("category") or a.get("payload.category"),
            "live": a[field_name], "shadow": b[field_name], "view": view}


def summarize(outcome: Outcome, *, examples: int = EXAMPLES) -> DiffReport:
    """The report of a replay outcome (window and reinfer filled in by :func:`replay_diff`)."""
    report = DiffReport(window={}, code_version=git_sha(), stores=describe(outcome))
    flips: dict[tuple[Any, Any], dict[str, Any]] = {}
    for name, cmp in outcome.views.items():
        report.views[name] = _view_summary(cmp, examples)
        if cmp.n_added + cmp.n_removed + cmp.n_changed > len(cmp.differing):
            report.details_truncated = True
        for key in cmp.differing:
            live, shadow = cmp.live_rows.get(key), cmp.shadow_rows.get(key)
            if live is None and shadow is None:
                continue
            agent = _agent(live, shadow)
            if agent is not None:
                _add_agent(report, agent=agent, view=name, live=live, shadow=shadow)
            flip = _flip(name, live, shadow)
            if flip is not None:
                flips.setdefault((flip["run_id"], flip["category"]), flip)
    report.verdict_flips = sorted(flips.values(), key=lambda f: (str(f["run_id"]),
                                                                 str(f["category"])))
    return report


def _view_summary(cmp: ViewComparison, examples: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rows_live": cmp.rows_live, "rows_shadow": cmp.rows_shadow,
                           "added": cmp.n_added, "removed": cmp.n_removed,
                           "changed": cmp.n_changed, "skipped": cmp.skipped, "examples": []}
    if cmp.unprovable:
        out["unprovable"] = cmp.unprovable
    for kind, keys in (("changed", cmp.changed), ("added", cmp.added),
                       ("removed", cmp.removed)):
        for key in keys[:examples]:
            out["examples"].append({"key": key, "kind": kind, "columns": changed_columns(
                cmp.live_rows.get(key), cmp.shadow_rows.get(key))})
    return out


def _add_agent(report: DiffReport, *, agent: str, view: str, live: Mapping[str, Any] | None,
               shadow: Mapping[str, Any] | None) -> None:
    entry = report.agents.setdefault(agent, {}).setdefault(
        view, {"added": 0, "removed": 0, "changed": 0, "deltas": {}})
    entry["added" if live is None else "removed" if shadow is None else "changed"] += 1
    a, b = _flat(live or {}), _flat(shadow or {})
    for col in a.keys() | b.keys():
        if col.removeprefix("payload.") in _NOT_MEASURES:
            continue
        x, y = _number(a.get(col)), _number(b.get(col))
        if (x is None and y is None) or x == y:
            continue
        deltas = entry["deltas"]
        deltas[col] = round(deltas.get(col, 0.0) + (y or 0.0) - (x or 0.0), 9)


def replay_diff(
    settings: Settings,
    request: ReplayRequest,
    *,
    code: ReplayCode | None = None,
    engine: Engine | None = None,
    clickhouse: ClickHouse | None = None,
    examples: int = EXAMPLES,
    wiring: Wiring | None = None,
) -> DiffReport:
    """Replay ``request``'s window with ``code`` and report what differs from live
    (``wiring``: as :func:`sinks.replay.engine.run_replay`).

    Full rows of up to ``request.detail_rows`` differing keys per view are read (100,000
    when the request asks for none) for examples, per-agent totals and verdict flips;
    ``details_truncated`` says when a view had more.
    """
    if request.detail_rows <= 0:
        request = dataclasses.replace(request, detail_rows=100_000,
                                      max_keys=max(request.max_keys, 100_000))
    outcome = run_replay(settings, request, code=code, engine=engine, clickhouse=clickhouse,
                         wiring=wiring)
    report = summarize(outcome, examples=examples)
    report.window = {"from": _iso(request.since_ms), "to": _iso(request.until_ms)}
    return report


def _iso(ms: int | None) -> str | None:
    return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _cell(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    text = text if len(text) <= 60 else text[:57] + "..."
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: DiffReport) -> str:
    """The report as Markdown."""
    w = report.window
    lines = [f"# Replay diff: {w.get('from') or 'log start'} → {w.get('to') or 'live position'}",
             "", f"Code version `{report.code_version}`; {report.changes} rows differ.", ""]
    for store, info in report.stores.items():
        where = (f"`{info['shadow']}` (kept)" if info["shadow_kept"]
                 else "a shadow database (dropped)")
        lines.append(f"- {store}: {info['replayed_records']} records replayed into {where}")
    lines += ["", "## Views", "", "| view | rows live | rows shadow | added | removed | changed "
              "| skipped |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, v in report.views.items():
        note = " (unprovable)" if v.get("unprovable") else ""
        lines.append(f"| {name}{note} | {v['rows_live']} | {v['rows_shadow']} | {v['added']} "
                     f"| {v['removed']} | {v['changed']} | {v['skipped']} |")
    lines += ["", f"## Custody verdict flips ({len(report.verdict_flips)})", ""]
    if report.verdict_flips:
        lines += ["| run | agent | category | live | shadow |", "|---|---|---|---|---|"]
        lines += [f"| {f['run_id']} | {f['agent_id']} | {f['category']} | {f['live']} | "
                  f"{f['shadow']} |" for f in report.verdict_flips]
    else:
        lines.append("None.")
    lines += ["", "## Per agent", ""]
    if report.agents:
        lines += ["| agent | view | added | removed | changed | totals moved (shadow − live) |",
                  "|---|---|---:|---:|---:|---|"]
        for agent in sorted(report.agents):
            for view, a in sorted(report.agents[agent].items()):
                deltas = ", ".join(f"{k} {v:+g}" for k, v in sorted(a["deltas"].items()))
                lines.append(f"| {agent} | {view} | {a['added']} | {a['removed']} | "
                             f"{a['changed']} | {_cell(deltas)} |")
    else:
        lines.append("No agent's rows differ.")
    examples = [(n, e) for n, v in report.views.items() for e in v["examples"]]
    if examples:
        lines += ["", "## Examples", ""]
        for name, ex in examples:
            cols = "; ".join(f"{c}: {_cell(a)} → {_cell(b)}" for c, (a, b) in
                             list(ex["columns"].items())[:6])
            lines.append(f"- {name} {ex['kind']} `{ex['key']}`: {cols}")
    if report.reinfer is not None:
        r = report.reinfer
        lines += ["", "## Re-inference", "",
                  f"{r['compared']} of {r['requests']} requests answered again; "
                  f"{r['differing']} differ from the recorded responses, "
                  f"{r['not_recorded']} had no recorded response.", ""]
        for ex in r["examples"]:
            cols = "; ".join(f"{c}: {_cell(a)} → {_cell(b)}" for c, (a, b) in
                             ex["fields"].items())
            lines.append(f"- `{ex['request_id']}`: {cols}")
    if report.details_truncated:
        lines += ["", "Details (examples, per agent, flips) cover the first 100,000 differing "
                  "keys of a view."]
    return "\n".join(lines) + "\n"
