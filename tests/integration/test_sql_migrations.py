"""ClickHouse migrations forward and back, and `lvlup sql` for analysts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import applied_versions, load_migrations, migrate_down, migrate_up

pytestmark = pytest.mark.integration


def _tables(client, db="lvlup"):
    return {r[0] for r in client.query(f"SHOW TABLES FROM {db}").rows}


def test_clickhouse_migrations_go_forward_and_back(tmp_path):
    client = ChdbClient(tmp_path / "ch")
    try:
        versions = [m.version for m in load_migrations()]
        assert migrate_up(client, "lvlup") == versions
        assert migrate_up(client, "lvlup") == []  # idempotent
        assert {"events", "learning_by_agent_topic_day", "custody_pass_rate_day",
                "inference_by_route_day", "guardian_findings_day", "agent_metrics_latest",
                "learning_cycles_day", "knowledge_transfers_day",
                "internet_learning_by_source_day", "custody_xp_day",
                "inference_serving_day"} <= _tables(client)
        assert migrate_down(client, "lvlup", 1) == [v for v in versions if v > 1][::-1]
        assert "learning_by_agent_topic_day" not in _tables(client)
        assert "events" in _tables(client)
        assert migrate_down(client, "lvlup", 0) == [1]
        assert _tables(client) == {"schema_migrations"}
        assert applied_versions(client, "lvlup") == []
        assert migrate_up(client, "lvlup") == versions
    finally:
        client.close()


def test_lvlup_sql_answers_group_by_and_refuses_drop(tmp_path):
    path = tmp_path / "ch"
    client = ChdbClient(path)
    migrate_up(client, "lvlup")
    client.command(
        "INSERT INTO lvlup.events (event_id, record_type, schema_version, agent_id, occurred_at,"
        " producer, topic, partition, offset, kafka_ts, payload) SELECT generateUUIDv4(), "
        "'learning_event', 2, concat('agent-', toString(number % 3)), now64(3), 'test', 't', "
        "0, number, now64(3), '{}' FROM numbers(300)"
    )
    client.close()
    env = {**os.environ, "LVLUP_CLICKHOUSE__CHDB_PATH": str(path),
           "LVLUP_DATA_DIR": str(tmp_path / "data")}

    def lvlup(*args):
        return subprocess.run([sys.executable, "-m", "infra.cli", "sql", *args], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    ok = lvlup("SELECT agent_id, count() AS n FROM lvlup.events GROUP BY agent_id "
               "ORDER BY agent_id", "--format", "csv")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.splitlines() == ["agent_id,n", "agent-0,100", "agent-1,100", "agent-2,100"]
    as_json = lvlup("SELECT count() AS n FROM lvlup.events", "--format", "json")
    assert as_json.stdout.strip() == '{"n": 300}'
    refused = lvlup("DROP TABLE lvlup.events")
    assert refused.returncode == 2
    assert refused.stderr.strip() == ("lvlup: error: DROP is not a read query: only "
                                      "SELECT/WITH/SHOW/DESCRIBE/EXPLAIN/EXISTS are allowed")
    still = lvlup("SELECT count() AS n FROM lvlup.events", "--format", "csv")
    assert still.stdout.splitlines()[1] == "300"
