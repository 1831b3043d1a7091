"""BENCHMARKS.md: every ``lvlup bench`` figure with its goal and verdict, on this machine.

``make bench`` runs each registered benchmark and ``make chaos`` the fault suite; each
rewrites its own sections of the file and keeps the others (read back from the page's raw
JSON block), every section stamped with when it was measured. Commit it when figures change.

Sections whose heading says "hand-measured" (figures an engineer measured by hand, e.g. the
issue-#22 before/after rows) are not in the JSON: the writer carries them over verbatim,
after the generated sections. A paired ratio (:mod:`infra.bench.pairs`) is printed as its
median with the min–max and the number of pairs beside it.
"""

from __future__ import annotations

import json
import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.bench.pairs import format_ratio

__all__ = ["hand_measured", "machine", "render", "write_benchmarks"]


def machine() -> str:
    """One line about this machine: CPU model, cores, memory, Python."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or cpu
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, Python "
            f"{platform.python_version()}")


_SPREAD_KEYS = ("ratio_min", "ratio_max")


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        spread = format_ratio(value)
        for key, inner in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if spread and key == "ratio":
                out.append((path, spread))
            elif not (spread and key in _SPREAD_KEYS):
                _flatten(path, inner, out)
    else:
        out.append((prefix, f"{value:,.3f}" if isinstance(value, float) else str(value)))


def render(results: dict[str, dict[str, Any]], when: datetime,
           kept: list[str] | None = None) -> str:
    """The Markdown page for ``results`` (bench name → its figures dict); ``kept``:
    hand-measured sections (Markdown, each from its ``## `` heading) placed after them."""
    lines = ["# Benchmarks", "",
             f"Written {when:%Y-%m-%d %H:%M} UTC on: {machine()}.", "",
             "Each benchmark prints these with `lvlup bench NAME --json` (the fault suite "
             "with `lvlup chaos --json`); `make bench` and `make chaos` rewrite their sections "
             "of this page, each stamped `measured_at`.", ""]
    for name, figures in results.items():
        verdict = ("measured, no goal" if figures.get("goal") == "none"
                   else "meets its goal" if figures.get("pass") else "falls short of its goal")
        if "error" in figures:
            verdict = f"did not run: {figures['error']}"
        lines += [f"## {name} — {verdict}", "", "| figure | value |", "|---|---|"]
        rows: list[tuple[str, str]] = []
        _flatten("", {k: v for k, v in figures.items() if k != "per_type"}, rows)
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    for section in kept or []:
        lines += [section.rstrip("\n"), ""]
    lines += ["<details><summary>raw JSON</summary>", "", "```json",
              json.dumps(results, indent=1, default=str), "```", "</details>", ""]
    return "\n".join(lines)


_RAW = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


def _previous(path: Path) -> dict[str, dict[str, Any]]:
    """The results on an existing page (its raw JSON block); {} when there is none."""
    try:
        match = _RAW.search(path.read_text())
    except FileNotFoundError:
        return {}
    if match is None:
        return {}
    try:
        data = json.loads(match.group(1))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


_SECTION = re.compile(r"^## .*?(?=^## |^<details><summary>raw JSON|\Z)", re.DOTALL | re.MULTILINE)


def hand_measured(text: str) -> list[str]:
    """The sections of a page whose ``## `` heading contains "hand-measured", verbatim."""
    return [m.group(0) for m in _SECTION.finditer(text)
            if "hand-measured" in m.group(0).split("\n", 1)[0]]


def write_benchmarks(path: Path, results: dict[str, dict[str, Any]]) -> None:
    """Rewrite ``path``: ``results`` (bench name → figures) stamped with the time now replace
    their sections; the page's other sections, generated or hand-measured, are kept."""
    now = datetime.now(UTC)
    stamped = {name: {**figures, "measured_at": f"{now:%Y-%m-%d %H:%M} UTC"}
               for name, figures in results.items()}
    kept = hand_measured(path.read_text()) if path.exists() else []
    path.write_text(render({**_previous(path), **stamped}, now, kept))
