"""Issue #17, item 5: analyst reads are parsed by sqlglot and enforced by ClickHouse.

The attacks of the issue through the public paths — :func:`guard_query` (what every reader
runs), ``lvlup sql`` and the chdb owner's loopback endpoint — against chdb in process.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.owner import TOKEN_HEADER, OwnerServer
from sinks.clickhouse.readonly import QueryLimits, check_read_only, guard_query
from sinks.errors import QueryError, ReadOnlyViolation


@pytest.fixture(scope="module")
def chdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChdbClient]:
    """One chdb directory with a small table (one process may hold one chdb directory)."""
    client = ChdbClient(tmp_path_factory.mktemp("chdb"))
    client.command("CREATE DATABASE IF NOT EXISTS lvlup")
    client.command("CREATE TABLE lvlup.t (x UInt64) ENGINE = MergeTree ORDER BY x")
    client.command("INSERT INTO lvlup.t SELECT number FROM system.numbers LIMIT 1000")
    yield client
    client.close()


@pytest.fixture(scope="module")
def table_functions(chdb: ChdbClient) -> list[str]:
    """Every table function this ClickHouse knows (94 in chdb 4.x)."""
    return [str(r[0]) for r in chdb.query("SELECT name FROM system.table_functions").rows]


@pytest.mark.parametrize(("sql", "reason"), [
    ("SELECT * FROM `file`('/etc/passwd', 'LineAsString')", "table function file()"),
    ('SELECT * FROM "file"(\'/etc/passwd\')', "table function file()"),
    ("SELECT * FROM FILE('/etc/passwd')", "table function file()"),
    ("SELECT `file`('/etc/passwd')", "function file() reads the host"),
    ("SELECT * FROM url('http://169.254.169.254/', LineAsString)", "table function url()"),
    ("SELECT x FROM lvlup.t WHERE x IN (SELECT * FROM `url`('http://x', CSV))",
     "table function url()"),
    ("SELECT 1 -- it's\n; DROP TABLE lvlup.t", "only one statement"),
    ("SELECT 1 /* ' */ ; DROP TABLE lvlup.t", "only one statement"),
    ("SELECT '/*' ; DROP TABLE lvlup.t -- */", "only one statement"),
    ("SELECT 1 INTO OUTFILE '/tmp/lvlup-outfile'", "INTO OUTFILE"),
    ("SELECT 1 into /* x */ outfile '/tmp/lvlup-outfile'", "INTO OUTFILE"),
    ("SELECT 1 FORMAT TSV", "FORMAT"),
    ("SELECT 1 SETTINGS readonly = 0", "not yours to change"),
    ("SELECT 1 SETTINGS max_execution_time = 0", "not yours to change"),
    ("SELECT * FROM (SELECT 1 SETTINGS max_result_rows = 0)", "last clause"),
    ("DESC file('/etc/passwd', 'LineAsString')", "not a table function"),
    ("EXPLAIN SELECT * FROM s3('https://x/y')", "table function s3()"),
    ("SHOW TABLES FROM lvlup LIKE file('x')", "not a table function"),
    ("INSERT INTO FUNCTION file('/tmp/x') SELECT 1", "INSERT is not a read"),
    ("SYSTEM SHUTDOWN", "not a read query"),
])
def test_escapes_are_refused_by_the_parser(sql: str, reason: str) -> None:
    with pytest.raises(ReadOnlyViolation, match=reason.replace("(", r"\(").replace(")", r"\)")):
        guard_query(sql)


def test_every_table_function_of_clickhouse_is_refused(table_functions: list[str]) -> None:
    assert len(table_functions) > 60
    # refused as a table function, or (view, format, dictionary…: names sqlglot's grammar
    # claims) as a query the parser cannot read — never passed through
    reason = "table function|cannot parse|VALUES"
    for name in table_functions:
        for call in (f"{name}('x')", f"`{name}`('x')", f"{name.upper()}()",
                     f"{name}(SELECT 1)", f"{name}('x', 'y') AS z"):
            with pytest.raises(ReadOnlyViolation, match=reason):
                check_read_only(f"SELECT * FROM {call}")
            with pytest.raises(ReadOnlyViolation, match=reason):
                check_read_only(f"SELECT * FROM lvlup.t AS a JOIN {call} AS b ON 1")
            with pytest.raises(ReadOnlyViolation, match=reason):
                check_read_only(f"SELECT x FROM lvlup.t WHERE x IN (SELECT * FROM {call})")


def test_readonly_is_enforced_by_clickhouse_not_only_the_parser(chdb: ChdbClient,
                                                                tmp_path: Path) -> None:
    """Were the parser fooled, the settings every read carries still refuse the escape."""
    settings = QueryLimits().settings_sql()
    with pytest.raises(QueryError, match="readonly"):
        chdb.query(f"SELECT * FROM file('/etc/passwd', 'LineAsString') SETTINGS {settings}")
    with pytest.raises(QueryError, match="readonly"):
        chdb.query(f"CREATE TABLE lvlup.evil (x UInt8) ENGINE = Memory SETTINGS {settings}")
    # the limits are per query: the owner's own connection still writes afterwards
    chdb.command("INSERT INTO lvlup.t VALUES (5000)")
    assert chdb.query("SELECT count() FROM lvlup.t").scalar() == 1001
    chdb.command("ALTER TABLE lvlup.t DELETE WHERE x = 5000 SETTINGS mutations_sync = 1")


def test_an_unbounded_query_is_stopped_with_a_clear_error(chdb: ChdbClient) -> None:
    limits = QueryLimits(max_execution_time_s=1, max_result_rows=10_000)
    with pytest.raises(QueryError, match="Timeout exceeded"):
        chdb.query(guard_query("SELECT count() FROM system.numbers", limits))
    with pytest.raises(QueryError, match=r"Timeout exceeded|Limit for result exceeded"):
        chdb.query(guard_query("SELECT a.x, b.x FROM lvlup.t AS a CROSS JOIN lvlup.t AS b "
                               "CROSS JOIN lvlup.t AS c", limits))
    with pytest.raises(QueryError, match="Limit for result exceeded"):
        chdb.query(guard_query("SELECT number FROM system.numbers LIMIT 20000", limits))
    # a UNION's trailing SETTINGS would bind to its last SELECT only: the wrap covers it all
    with pytest.raises(QueryError, match="Limit for result exceeded"):
        chdb.query(guard_query("SELECT 1 UNION ALL SELECT 2",
                               QueryLimits(max_result_rows=1)))
    with pytest.raises(QueryError, match=r"[Mm]emory limit"):
        chdb.query(guard_query("SELECT groupArray(number) FROM system.numbers",
                               QueryLimits(max_execution_time_s=20,
                                           max_memory_usage=32 << 20)))
    # chdb keeps a failed query's partial output; the client drains it: the next read is clean
    assert chdb.query(guard_query("SELECT 7 AS n")).rows == [(7,)]


def test_reads_still_work_with_their_own_format_settings(chdb: ChdbClient) -> None:
    sql = ("SELECT x, toUInt64(x) * 2 AS y FROM lvlup.t ORDER BY x LIMIT 3 OFFSET 1 "
           "SETTINGS output_format_json_quote_64bit_integers = 0")
    res = chdb.query(guard_query(sql))
    assert res.columns == ("x", "y") and res.rows == [(1, 2), (2, 4), (3, 6)]
    for other in ("SHOW TABLES FROM lvlup", "DESCRIBE TABLE lvlup.t", "EXISTS TABLE lvlup.t",
                  "EXPLAIN SELECT count() FROM lvlup.t", "SELECT 1 UNION ALL SELECT 2"):
        assert chdb.query(guard_query(other)).rows


def test_the_owner_endpoint_needs_its_token(chdb: ChdbClient, tmp_path: Path) -> None:
    owner = OwnerServer(chdb, tmp_path / "clickhouse.json",
                        limits=QueryLimits(max_execution_time_s=1))
    owner.start()
    try:
        token_file = tmp_path / "clickhouse.token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text()
        url = f"http://127.0.0.1:{owner.port}/query"
        with httpx.Client(trust_env=False) as http:
            assert http.post(url, content=b"SELECT 1").status_code == 401
            assert http.post(url, content=b"SELECT 1",
                             headers={TOKEN_HEADER: token[:-1] + "x"}).status_code == 401
            ok = http.post(url, content=b"SELECT count() FROM lvlup.t",
                           headers={TOKEN_HEADER: token})
            assert ok.status_code == 200 and ok.json()["rows"] == [[1000]]
            refused = http.post(url, content=b"SELECT * FROM `file`('/etc/passwd')",
                                headers={TOKEN_HEADER: token})
            assert refused.status_code == 403
            slow = http.post(url, content=b"SELECT count() FROM system.numbers",
                             headers={TOKEN_HEADER: token})
            assert slow.status_code == 400 and "Timeout exceeded" in slow.json()["error"][
                "message"]
    finally:
        owner.stop()
    assert not token_file.exists()


def test_lvlup_sql_refuses_and_limits(chdb: ChdbClient, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``lvlup sql`` end to end (its own chdb directory, opened after the fixture's)."""
    from infra.cli.app import build_app

    chdb.close()  # one chdb directory per process at a time
    monkeypatch.setenv("LVLUP_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LVLUP_CLICKHOUSE__CHDB_PATH", str(tmp_path / "ch"))
    monkeypatch.setenv("LVLUP_CLICKHOUSE__READ_MAX_EXECUTION_TIME_S", "1")
    app, runner = build_app(), CliRunner()
    ok = runner.invoke(app, ["sql", "--format", "json", "SELECT 41 + 1 AS answer"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout.strip().splitlines()[-1]) == {"answer": 42}
    for sql, reason in [("SELECT * FROM `file`('/etc/passwd', 'LineAsString')", "file()"),
                        ("SELECT 1 INTO OUTFILE '/tmp/lvlup-outfile'", "OUTFILE"),
                        ("SELECT count() FROM system.numbers", "Timeout exceeded")]:
        res = runner.invoke(app, ["sql", sql])
        assert res.exit_code != 0
        assert reason in (res.output + repr(res.exception))
    assert not Path("/tmp/lvlup-outfile").exists()
