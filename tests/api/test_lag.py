"""Lag: records on the log that the sink group has not consumed yet are counted in the
watermark, and are not in the view (on the writers' environment: it adds records)."""

from __future__ import annotations

import pytest

from schemas.codec import load_codec
from streams.producer import EventProducer

pytestmark = pytest.mark.integration


def test_lag_counts_records_the_sink_has_not_consumed(make_client, api_env, loaded):
    record = dict(loaded.of("trusted_source_changed")[0].record)
    record.pop("event_id")
    producer = EventProducer(api_env.settings.kafka.bootstrap(), load_codec(), api_env.router)
    for i in range(3):
        producer.emit("trusted_source_changed", {**record, "source_id": f"lag-{i}"})
    producer.close()
    with make_client(lag_ttl_s=0) as client:
        r = client.get("/api/imperium/trusted-sources", headers=api_env.auth("read"))
    wm = r.json()["watermark"]
    assert wm["lag"] >= 3
    assert not any(row["source_id"].startswith("lag-") for row in r.json()["items"])
