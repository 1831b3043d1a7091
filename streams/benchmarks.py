"""BENCHMARKS.md: every ``lvlup bench`` figure with its goal and verdict, on this machine.

``make bench`` runs each registered benchmark and rewrites the file; commit it when the
figures change.
"""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["machine", "render", "write_benchmarks"]


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


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for key, inner in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), inner, out)
    else:
        out.append((prefix, f"{value:,.3f}" if isinstance(value, float) else str(value)))


def render(results: dict[str, dict[str, Any]], when: datetime) -> str:
    """The Markdown page for ``results`` (bench name → its figures dict)."""
    lines = ["# Benchmarks", "",
             f"Measured {when:%Y-%m-%d %H:%M} UTC on: {machine()}.", "",
             "Each benchmark prints these with `lvlup bench NAME --json`; `make bench` "
             "rewrites this page.", ""]
    for name, figures in results.items():
        verdict = "meets its goal" if figures.get("pass") else "falls short of its goal"
        if "error" in figures:
            verdict = f"did not run: {figures['error']}"
        lines += [f"## {name} — {verdict}", "", "| figure | value |", "|---|---|"]
        rows: list[tuple[str, str]] = []
        _flatten("", {k: v for k, v in figures.items() if k != "per_type"}, rows)
        lines += [f"| {k} | {v} |" for k, v in rows]
        lines.append("")
    lines += ["<details><summary>raw JSON</summary>", "", "```json",
              json.dumps(results, indent=1, default=str), "```", "</details>", ""]
    return "\n".join(lines)


def write_benchmarks(path: Path, results: dict[str, dict[str, Any]]) -> None:
    """Rewrite ``path`` with ``results``."""
    path.write_text(render(results, datetime.now(UTC)))
