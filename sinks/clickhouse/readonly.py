"""The analysts' read-only gate: only one read statement, no table functions that reach out.

Allowed first keywords: SELECT, WITH, SHOW, DESCRIBE/DESC, EXPLAIN, EXISTS. One statement
only (a trailing ``;`` is fine). Table functions that read files, URLs, other servers or run
programs (``file``, ``url``, ``s3``, ``remote``, ``executable``, ``python`` …) are refused:
the gate guards the machine as well as the data. Strings and comments are stripped before
the checks, so a keyword inside a literal neither passes nor blocks a query.
"""

from __future__ import annotations

import re

from sinks.errors import ReadOnlyViolation

__all__ = ["check_read_only"]

_ALLOWED = {"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"}
_TABLE_FUNCTIONS = (
    "file", "url", "urlcluster", "s3", "s3cluster", "gcs", "azureblobstorage", "hdfs",
    "remote", "remotesecure", "cluster", "clusterallreplicas", "executable", "python",
    "mysql", "postgresql", "jdbc", "odbc", "sqlite", "mongodb", "redis", "input", "iceberg",
    "deltalake", "hudi", "dictionary",
)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`(?:[^`\\]|\\.)*`")
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_FUNC = re.compile(r"\b(" + "|".join(_TABLE_FUNCTIONS) + r")\s*\(", re.I)


def check_read_only(sql: str) -> str:
    """Return ``sql`` (trailing ``;`` removed) if it is one read; else raise.

    Raises :class:`ReadOnlyViolation` with a one-line reason.
    """
    stripped = _COMMENTS.sub(" ", _STRINGS.sub("''", sql)).strip()
    if not stripped:
        raise ReadOnlyViolation("empty query")
    body = stripped.rstrip("; \n\t")
    if ";" in body:
        raise ReadOnlyViolation("only one statement per query")
    first = body.split(None, 1)[0].upper()
    if first not in _ALLOWED:
        raise ReadOnlyViolation(f"{first} is not a read query: only SELECT/WITH/SHOW/"
                                "DESCRIBE/EXPLAIN/EXISTS are allowed")
    match = _FUNC.search(body)
    if match:
        raise ReadOnlyViolation(f"table function {match.group(1).lower()}() is not allowed here")
    return sql.strip().rstrip(";").strip()
