"""ClickHouse custody analytics: XP per agent and day with its running total (chdb)."""

from __future__ import annotations

import json

import pytest

from sinks.clickhouse.client import ChdbClient
from sinks.clickhouse.migrate import migrate_up

pytestmark = pytest.mark.integration


def _run(client: ChdbClient, offset: int, agent: str, day: str, xp: int, verdict: str) -> None:
    payload = json.dumps({"xp_awarded": xp, "verdict": verdict})
    client.command(
        "INSERT INTO lvlup.events (event_id, record_type, schema_version, agent_id, occurred_at,"
        " producer, topic, partition, offset, kafka_ts, payload) VALUES (generateUUIDv4(), "
        f"'custody_run_result', 1, '{agent}', toDateTime64('{day} 12:00:00', 3), 'test', "
        f"'lvlup.custody.run-results', 0, {offset}, now64(3), '{payload}')")


def test_xp_per_day_and_running_total(tmp_path):
    client = ChdbClient(tmp_path / "ch")
    try:
        migrate_up(client, "lvlup")
        _run(client, 0, "guardian", "2026-11-20", 90, "passed")
        _run(client, 1, "guardian", "2026-11-20", 10, "failed")
        _run(client, 2, "guardian", "2026-11-21", 50, "passed")
        _run(client, 3, "sandbox", "2026-11-21", 30, "passed")
        rows = client.query("SELECT agent_id, toString(day), runs, passed_runs, xp_gained, "
                            "xp_total FROM lvlup.custody_xp_day ORDER BY agent_id, day").rows
    finally:
        client.close()
    assert [tuple(r) for r in rows] == [
        ("guardian", "2026-11-20", 2, 1, 100, 100),
        ("guardian", "2026-11-21", 1, 1, 50, 150),
        ("sandbox", "2026-11-21", 1, 1, 30, 30),
    ]
