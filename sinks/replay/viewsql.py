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


def _outside(sql: str) -> list[int]:
    """Indexes of the characters at parenthesis depth 0 and outside quoted text."""
    out: list[int] = []
    depth, quote, escaped = 0, "", False
    for i, ch in enumerate(sql):
        if quote:
            escaped, quote = (not escaped and ch == "\\",
                              "" if ch == quote and not escaped else quote)
        elif ch in "'`\"":
            quote = ch
        elif ch in "()":
            depth += 1 if ch == "(" else -1
        elif depth == 0:
            out.append(i)
    return out


def _word_at(sql: str, upper: str, i: int, word: str) -> bool:
    end = i + len(word)
    return (upper.startswith(word, i)
            and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_"))
            and (end == len(sql) or not (sql[end].isalnum() or sql[end] == "_")))


def top_level(sql: str) -> dict[str, str]:
    """The clauses of ``sql``'s outermost query (``{"SELECT": "...", "GROUP BY": "..."}``),
    ignoring subqueries, parentheses and quoted text."""
    marks: list[tuple[int, str]] = []
    upper = sql.upper()
    for i in _outside(sql):
        if marks and i < marks[-1][0] + len(marks[-1][1]):
            continue  # inside the keyword just found ("GROUP BY")
        clause = next((c for c in _CLAUSES if _word_at(sql, upper, i, c)), None)
        if clause is not None:
            marks.append((i, clause))
    out: dict[str, str] = {}
    for n, (start, clause) in enumerate(marks):
        stop = marks[n + 1][0] if n + 1 < len(marks) else len(sql)
        out.setdefault(clause, sql[start + len(clause):stop].strip())
    return out


def _items(clause: str) -> list[str]:
    """Top-level comma-separated items of a clause."""
    cuts = [i for i in _outside(clause) if clause[i] == ","]
    bounds = zip([-1, *cuts], [*cuts, len(clause)], strict=True)
    return [part for a, b in bounds if (part := clause[a + 1:b].strip())]


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
