"""A ClickHouse view's shape, read from its SELECT (pure): key and approximate columns.

- **Key columns** identify a row: the top-level ``GROUP BY`` items when they are plain
  column names of the view, else the view's columns that are not numbers or collections
  (strings, dates: the dimensions).
- **Approximate columns** come from sampling aggregates — ``quantile``/``quantiles``/
  ``median`` and their ``TDigest``/``Timing``/``BFloat16`` variants. ClickHouse documents
  ``quantile`` as reservoir sampling (8192 values) with a random generator: over more values
  than that, two computations over the same rows differ. Such columns cannot be proven equal
  and are left out of the row digests (and named); ``quantileExact*`` and
  ``quantileDeterministic`` are exact and compared.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["approximate_columns", "key_columns", "top_level"]

_APPROX = re.compile(r"\b(?:quantiles?|median)(?:TDigest\w*|Timing\w*|BFloat16\w*)?\s*\(",
                     re.IGNORECASE)
_ALIAS = re.compile(r"\bAS\s+`?(\w+)`?\s*$", re.IGNORECASE)
_CLAUSES = ("SELECT", "FROM", "WHERE", "GROUP BY", "HAVING", "ORDER BY", "LIMIT", "SETTINGS",
            "WINDOW", "QUALIFY")
_NON_KEY_TYPES = ("UInt", "Int", "Float", "Decimal", "Array", "Map", "Tuple", "Nullable(UInt",
                  "Nullable(Int", "Nullable(Float", "Nullable(Decimal")


def top_level(sql: str) -> dict[str, str]:
    """The clauses of ``sql``'s outermost query (``{"SELECT": "...", "GROUP BY": "..."}``),
    ignoring subqueries, parentheses and quoted text."""
    marks: list[tuple[int, str]] = []
    depth, i, quote = 0, 0, ""
    upper = sql.upper()
    while i < len(sql):
        ch = sql[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            quote = "" if ch == quote else quote
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
            for clause in _CLAUSES:
                end = i + len(clause)
                if upper.startswith(clause, i) and (end == len(sql) or not (
                        sql[end].isalnum() or sql[end] == "_")):
                    marks.append((i, clause))
                    i = end - 1
                    break
        i += 1
    out: dict[str, str] = {}
    for n, (start, clause) in enumerate(marks):
        stop = marks[n + 1][0] if n + 1 < len(marks) else len(sql)
        out.setdefault(clause, sql[start + len(clause):stop].strip())
    return out


def _items(clause: str) -> list[str]:
    """Top-level comma-separated items of a clause."""
    items: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in clause:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'`\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        items.append("".join(current).strip())
    return items


def key_columns(sql: str, columns: Sequence[tuple[str, str]]) -> list[str]:
    """The view's key columns (module doc); ``columns`` are its ``(name, type)`` pairs."""
    names = [n for n, _ in columns]
    group = [item.strip("`") for item in _items(top_level(sql).get("GROUP BY", ""))]
    if group and all(g in names for g in group):
        return group
    return [n for n, t in columns if not t.startswith(_NON_KEY_TYPES)]


def approximate_columns(sql: str) -> list[str]:
    """Columns of the outermost SELECT computed by a sampling quantile (module doc)."""
    out = []
    for item in _items(top_level(sql).get("SELECT", "")):
        alias = _ALIAS.search(item)
        if alias and _APPROX.search(item):
            out.append(alias.group(1))
    return out
