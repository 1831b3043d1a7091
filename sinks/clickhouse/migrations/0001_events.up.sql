-- Every record of every topic: typed common columns + the record as JSON.
-- ReplacingMergeTree(offset): a redelivered record (same sorting key) collapses to one row;
-- read with FINAL for exact answers before merges. The deduplication window makes a retried
-- insert with the same insert_deduplication_token a no-op on this non-replicated table.
CREATE TABLE IF NOT EXISTS {db}.events
(
    event_id       UUID,
    record_type    LowCardinality(String),
    schema_version UInt16,
    agent_id       String,
    occurred_at    DateTime64(3, 'UTC'),
    producer       LowCardinality(String),
    topic          LowCardinality(String),
    partition      UInt16,
    offset         UInt64,
    kafka_ts       DateTime64(3, 'UTC'),
    ingested_at    DateTime64(3, 'UTC') DEFAULT now64(3),
    payload        String CODEC(ZSTD(3))
)
ENGINE = ReplacingMergeTree(offset)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (record_type, agent_id, occurred_at, event_id)
SETTINGS non_replicated_deduplication_window = 10000
