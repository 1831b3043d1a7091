"""The analysts' read-only gate."""

from __future__ import annotations

import pytest

from sinks.clickhouse.readonly import check_read_only
from sinks.errors import ReadOnlyViolation


@pytest.mark.parametrize(("sql", "runs"), [
    ("SELECT 1", "SELECT 1"),
    ("  select agent_id, count() from lvlup.events group by agent_id;  ",
     "select agent_id, count() from lvlup.events group by agent_id"),
    ("WITH x AS (SELECT 1) SELECT * FROM x", "WITH x AS (SELECT 1) SELECT * FROM x"),
    ("SHOW TABLES FROM lvlup", "SHOW TABLES FROM lvlup"),
    ("DESCRIBE TABLE lvlup.events", "DESCRIBE TABLE lvlup.events"),
    ("EXPLAIN SELECT 1", "EXPLAIN SELECT 1"),
    ("SELECT 'DROP TABLE x, file(' AS s", "SELECT 'DROP TABLE x, file(' AS s"),  # data
    ("SELECT 1 -- DROP TABLE x", "SELECT 1"),  # comments are not run
    ("SELECT 1 /* a */ + 2", "SELECT 1 + 2"),
])
def test_reads_pass(sql, runs):
    assert check_read_only(sql) == runs


@pytest.mark.parametrize(("sql", "reason"), [
    ("DROP TABLE lvlup.events", "DROP is not a read query"),
    ("insert into lvlup.events values (1)", "INSERT is not a read query"),
    ("ALTER TABLE t DELETE WHERE 1", "ALTER is not a read query"),
    ("SELECT 1; DROP TABLE t", "only one statement"),
    ("SELECT * FROM file('/etc/passwd')", "file() is not allowed"),
    ("SELECT * FROM url('http://x', CSV)", "url() is not allowed"),
    ("select * from REMOTE('h', db.t)", "remote() is not allowed"),
    ("   ", "empty query"),
    ("/* SELECT */ TRUNCATE t", "TRUNCATE is not a read query"),
    ("SELECT 'a; b'", "only one statement"),  # no ';' at all: chdb runs every statement
])
def test_writes_and_escapes_are_refused(sql, reason):
    with pytest.raises(ReadOnlyViolation, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_read_only(sql)
