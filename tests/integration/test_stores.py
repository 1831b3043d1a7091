"""The real stores: a Postgres round trip (SQLAlchemy 2 + psycopg 3) and chdb MergeTree."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pytest
from sqlalchemy import BigInteger, Column, MetaData, String, Table, create_engine, func, select
from sqlalchemy.dialects.postgresql import insert

from sinks.clickhouse.client import ChdbClient
from sinks.errors import QueryError

pytestmark = pytest.mark.integration


def test_postgres_round_trip_with_upsert(stack):
    engine = create_engine(stack.postgres.sqlalchemy_url())
    meta = MetaData()
    table = Table(
        f"rt_{uuid.uuid4().hex[:8]}", meta,
        Column("k", String, primary_key=True), Column("v", BigInteger, nullable=False),
    )
    meta.create_all(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(table), [{"k": f"k{i}", "v": i} for i in range(1000)])
            upsert = insert(table).values([{"k": "k1", "v": 100}, {"k": "new", "v": 7}])
            conn.execute(upsert.on_conflict_do_update(index_elements=["k"],
                                                      set_={"v": upsert.excluded.v}))
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 1001
            assert conn.execute(select(table.c.v).where(table.c.k == "k1")).scalar_one() == 100
            assert conn.execute(select(func.sum(table.c.v))).scalar_one() == (
                sum(range(1000)) - 1 + 100 + 7
            )
    finally:
        meta.drop_all(engine)
        engine.dispose()


def test_chdb_mergetree_insert_and_group_by(tmp_path):
    ch = ChdbClient(tmp_path / "ch")
    try:
        ch.command("CREATE DATABASE IF NOT EXISTS t")
        ch.command(
            "CREATE TABLE t.ev (agent String, n UInt64) ENGINE = MergeTree ORDER BY (agent, n) "
            "SETTINGS non_replicated_deduplication_window = 100"
        )
        n = 100_000
        data = pa.table({"agent": [f"a{i % 4}" for i in range(n)], "n": list(range(n))})
        assert ch.insert_arrow("t.ev", data, dedup_token="ev:0:0-99999") == n
        # the same batch again (a redelivery) with the same token is stored once
        ch.insert_arrow("t.ev", data, dedup_token="ev:0:0-99999")
        res = ch.query(
            "SELECT agent, count() AS c, sum(n) AS s FROM t.ev GROUP BY agent ORDER BY agent"
        )
        assert res.columns == ("agent", "c", "s")
        assert [(r[0], int(r[1])) for r in res.rows] == [(f"a{i}", n // 4) for i in range(4)]
        assert sum(int(r[2]) for r in res.rows) == sum(range(n))
        params = ch.query("SELECT count() FROM t.ev WHERE agent = {a:String}", {"a": "a1"})
        assert int(params.scalar()) == n // 4
        with pytest.raises(QueryError):
            ch.query("SELECT * FROM t.missing")
    finally:
        ch.close()


def test_chdb_second_process_gets_a_clear_lock_error(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "owned"
    owner = ChdbClient(path)
    try:
        code = (
            "import sys; from pathlib import Path; from sinks.clickhouse.client import ChdbClient\n"
            "from sinks.errors import ChdbLocked\n"
            f"try:\n    ChdbClient(Path({str(path)!r}))\nexcept ChdbLocked as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              check=False,
                              timeout=60)
        assert proc.returncode == 3, proc.stderr[-500:]
        assert "in use by another process" in proc.stdout
    finally:
        owner.close()
