"""The analysts' read-only gate: parsed by sqlglot, enforced by ClickHouse (issue #17, item 5).

Two layers, both on every analyst query (``lvlup sql``, the API's reads, the chdb owner):

1. :func:`check_read_only` parses the query with sqlglot's ClickHouse dialect — never regexes,
   which backquoted names and comments defeat. It must be exactly one SELECT / WITH / UNION,
   or a SHOW / DESCRIBE / EXISTS / EXPLAIN of a plain name. Refused: any ``;`` but a trailing
   one (even inside a string or comment: chdb runs every statement of a multi-statement
   text, so a parser differential must not be able to smuggle one), a second statement,
   ``INTO OUTFILE`` (anywhere in the text: ClickHouse's ``readonly`` does not block it),
   ``FORMAT``, every table-function call (``file``, ``url``, ``s3``, ``remote``, ``numbers``…:
   no allow-list), the scalar functions that read the host (``file``), and ``SETTINGS``
   other than a trailing clause of output-format settings. Comments are dropped from the
   text that is run.
2. :func:`guard_query` runs the checked query under ClickHouse's own limits: it becomes
   ``SELECT * FROM (<query>) SETTINGS …`` (a trailing ``SETTINGS`` of a UNION binds to its
   last SELECT only) with ``readonly=1`` (no writes, DDL, setting changes or table functions
   that reach out), ``max_execution_time`` + ``timeout_overflow_mode='throw'``,
   ``max_result_rows`` + ``result_overflow_mode='throw'`` and ``max_memory_usage``
   (:class:`QueryLimits`, from ``ClickHouseSettings``). References: ClickHouse docs,
   "Permissions for queries" (readonly), "Restrictions on query complexity".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import Token, TokenType, exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.errors import ParseError, TokenError

from sinks.errors import ReadOnlyViolation

__all__ = ["QueryLimits", "check_read_only", "guard_query"]

#: scalar functions that read the host (``file`` reads any path chdb can open, readonly or not)
_HOST_FUNCTIONS = frozenset({"file", "filecluster", "url", "s3", "executable", "python"})
#: settings a query may carry itself (formatting only); everything else is the gate's
_USER_SETTING = re.compile(r"output_format_[a-z0-9_]+|date_time_output_format|join_use_nulls")
_SHOW_WHAT = frozenset({"TABLES", "DATABASES", "CREATE", "COLUMNS", "DICTIONARIES", "FIELDS",
                        "FULL", "INDEX", "INDEXES", "KEYS"})
_EXPLAIN_KINDS = frozenset({"AST", "SYNTAX", "PLAN", "PIPELINE", "ESTIMATE"})
_SETTING_VALUE = frozenset({TokenType.NUMBER, TokenType.STRING, TokenType.TRUE,
                            TokenType.FALSE})


@dataclass(frozen=True)
class QueryLimits:
    """ClickHouse limits on one analyst query (``ClickHouseSettings.read_*``).

    ``max_execution_time_s``: seconds before ClickHouse stops it (TIMEOUT_EXCEEDED, code 159).
    ``max_result_rows``: rows in the result before it fails (TOO_MANY_ROWS_OR_BYTES, 396).
    ``max_memory_usage``: bytes the query may allocate (MEMORY_LIMIT_EXCEEDED, 241).
    """

    max_execution_time_s: float = 30.0
    max_result_rows: int = 1_000_000
    max_memory_usage: int = 2 << 30

    def settings_sql(self) -> str:
        """The enforced settings as ``name = value, …``; ``readonly`` last."""
        return (f"max_execution_time = {self.max_execution_time_s:g}, "
                "timeout_overflow_mode = 'throw', "
                f"max_result_rows = {int(self.max_result_rows)}, "
                "result_overflow_mode = 'throw', "
                f"max_memory_usage = {int(self.max_memory_usage)}, readonly = 1")


@dataclass(frozen=True)
class _Checked:
    text: str  # the statement without comments, trailing ';' or trailing SETTINGS
    user_settings: str  # the allowed trailing settings, "name = value, …" or ""
    wrap: bool  # a query (SELECT/WITH/UNION): run as SELECT * FROM (…)


def check_read_only(sql: str) -> str:
    """``sql`` as the one read statement it must be (comments and trailing ``;`` removed);
    raises :class:`ReadOnlyViolation` with a one-line reason (module doc, layer 1)."""
    checked = _check(sql)
    return checked.text + (f" SETTINGS {checked.user_settings}" if checked.user_settings else "")


def guard_query(sql: str, limits: QueryLimits | None = None) -> str:
    """The text to run for an analyst's ``sql``: checked (:func:`check_read_only`) and
    wrapped so ClickHouse enforces ``readonly=1`` and ``limits`` (module doc, layer 2).
    Raises :class:`ReadOnlyViolation`."""
    checked = _check(sql)
    settings = (limits or QueryLimits()).settings_sql()
    if checked.user_settings:
        settings = f"{checked.user_settings}, {settings}"
    if checked.wrap:
        return f"SELECT * FROM (\n{checked.text}\n) SETTINGS {settings}"  # noqa: S608
    return f"{checked.text} SETTINGS {settings}"


def _check(sql: str) -> _Checked:
    body = sql.strip().rstrip(";").strip()
    if not body:
        raise ReadOnlyViolation("empty query")
    if ";" in body:
        raise ReadOnlyViolation("only one statement per query (no ';' but a trailing one, "
                                "not even inside a string or comment: use char(59))")
    if re.search(r"outfile", body, re.IGNORECASE):
        raise ReadOnlyViolation("INTO OUTFILE is not allowed: results come back to you")
    tokens = _tokens(body)
    if not tokens:
        raise ReadOnlyViolation("empty query")
    first = tokens[0].text.upper()
    if first in ("SHOW", "EXPLAIN"):
        # sqlglot reads the rest of a command as one string: tokenize it on its own
        rest_text = body[tokens[0].end + 1:]
        rest = _tokens(rest_text)
        stop = next((i for i, t in enumerate(rest) if t.token_type == TokenType.SETTINGS),
                    len(rest))
        text, user_settings = _split_settings(rest_text, rest)
        text = f"{first} {text}"
        if first == "SHOW":
            _check_plain(first, rest, show=True)
            return _Checked(text, user_settings, wrap=False)
        inner = rest[:stop]
        if inner and inner[0].text.upper() in _EXPLAIN_KINDS:
            inner = inner[1:]
        if not inner or inner[0].text.upper() not in ("SELECT", "WITH", "("):
            raise ReadOnlyViolation("EXPLAIN [AST|SYNTAX|PLAN|PIPELINE|ESTIMATE] of a SELECT "
                                    "only")
        _check_query(_join(rest_text, inner))
        return _Checked(text, user_settings, wrap=False)
    text, user_settings = _split_settings(body, tokens)
    if first in ("SELECT", "WITH", "("):
        _check_query(text)
        return _Checked(text, user_settings, wrap=True)
    if first in ("DESCRIBE", "DESC", "EXISTS"):
        _check_plain(first, tokens[1:], show=False)
        return _Checked(text, user_settings, wrap=False)
    raise ReadOnlyViolation(f"{first} is not a read query: only SELECT/WITH/SHOW/"
                            "DESCRIBE/EXPLAIN/EXISTS are allowed")


def _tokens(sql: str) -> list[Token]:
    try:
        return list(ClickHouse().tokenizer().tokenize(sql))
    except TokenError as exc:
        raise ReadOnlyViolation(f"cannot read the query: {str(exc)[:200]}") from exc


def _join(sql: str, tokens: list[Token]) -> str:
    """``tokens`` as text, comments dropped: original spacing where the gap is only
    whitespace, one space where a comment was."""
    out: list[str] = []
    for i, tok in enumerate(tokens):
        if i:
            gap = sql[tokens[i - 1].end + 1:tok.start]
            out.append(gap if not gap.strip() else " ")
        out.append(sql[tok.start:tok.end + 1])
    return "".join(out)


def _split_settings(sql: str, tokens: list[Token]) -> tuple[str, str]:
    """(statement text, allowed trailing settings); refuses any other SETTINGS."""
    at = [i for i, t in enumerate(tokens) if t.token_type == TokenType.SETTINGS]
    if not at:
        return _join(sql, tokens), ""
    start, depth = at[-1], 0
    for tok in tokens[:start]:
        depth += (tok.token_type == TokenType.L_PAREN) - (tok.token_type == TokenType.R_PAREN)
    if len(at) > 1 or depth:
        raise ReadOnlyViolation("SETTINGS are allowed only as the query's last clause")
    pairs: list[str] = []
    rest = tokens[start + 1:]
    for i in range(0, len(rest), 4):
        name, eq, value = [*rest[i:i + 3], None, None, None][:3]
        sep = rest[i + 3] if i + 3 < len(rest) else None
        if (name is None or eq is None or value is None or eq.token_type != TokenType.EQ
                or value.token_type not in _SETTING_VALUE
                or (sep is not None and sep.token_type != TokenType.COMMA)):
            raise ReadOnlyViolation("SETTINGS must be name = literal pairs")
        if not _USER_SETTING.fullmatch(name.text.lower()):
            raise ReadOnlyViolation(f"setting {name.text!r} is not yours to change (allowed: "
                                    "output_format_*, date_time_output_format, join_use_nulls)")
        pairs.append(f"{name.text.lower()} = {sql[value.start:value.end + 1]}")
    return _join(sql, tokens[:start]), ", ".join(pairs)


def _parse(text: str) -> exp.Query:
    try:
        statements = [s for s in sqlglot.parse(text, read="clickhouse") if s is not None]
    except (ParseError, TokenError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ReadOnlyViolation(f"cannot parse the query: {first}") from exc
    except (IndexError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        # a crash inside the parser (seen: IndexError on `FROM values()`) refuses the query
        raise ReadOnlyViolation(f"cannot parse the query ({type(exc).__name__})") from exc
    if len(statements) != 1:
        raise ReadOnlyViolation("only one statement per query")
    if not isinstance(statements[0], exp.Query):
        raise ReadOnlyViolation("not a read query")
    return statements[0]


def _function_name(node: object) -> str:
    if isinstance(node, exp.Anonymous):
        return str(node.name).lower()
    if isinstance(node, exp.Func):
        return node.sql_name().lower()
    return type(node).__name__.lower()


def _check_query(text: str) -> None:
    for node in _parse(text).walk():
        if isinstance(node, exp.Table) and not isinstance(node.this, exp.Identifier):
            raise ReadOnlyViolation(f"table function {_function_name(node.this)}() is not "
                                    "allowed here: read tables and views by name")
        if isinstance(node, exp.TableAlias) and node.args.get("columns"):
            # sqlglot reads `dictionary('x')` as a table with alias columns; ClickHouse has no
            # alias column lists, but runs the table function: refuse the shape
            raise ReadOnlyViolation(f"table function {node.parent and node.parent.name}() or "
                                    "an alias column list is not allowed here")
        if isinstance(node, (exp.Values, exp.Command, exp.DDL, exp.DML, exp.Into)):
            raise ReadOnlyViolation(f"{type(node).__name__.upper()} is not allowed in a read")
        if isinstance(node, exp.Func) and _function_name(node) in _HOST_FUNCTIONS:
            raise ReadOnlyViolation(f"function {_function_name(node)}() reads the host and is "
                                    "not allowed")
        if isinstance(node, exp.Select) and node.args.get("format") is not None:
            raise ReadOnlyViolation("FORMAT is not allowed: results come back as JSON")
        if node.args.get("settings"):
            raise ReadOnlyViolation("SETTINGS are allowed only as the query's last clause")


def _check_plain(first: str, rest: list[Token], *, show: bool) -> None:
    """SHOW / DESCRIBE / EXISTS of names only: no parentheses, so no function or subquery."""
    if any(t.token_type in (TokenType.L_PAREN, TokenType.R_PAREN) for t in rest):
        raise ReadOnlyViolation(f"{first} takes a table name, not a table function or query")
    if show and (not rest or rest[0].text.upper() not in _SHOW_WHAT):
        raise ReadOnlyViolation("SHOW TABLES/DATABASES/CREATE/COLUMNS/DICTIONARIES only")
