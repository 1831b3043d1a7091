-- Learning analytics (issue #6) over events FINAL: exact under redelivery, computed at query time.
-- Latest metrics snapshot per agent (the seed's agent_metrics), newest record wins.
CREATE VIEW IF NOT EXISTS {db}.agent_metrics_latest AS
SELECT agent_id,
       argMax(JSONExtractString(payload, 'agent_type'), (occurred_at, offset)) AS agent_type,
       argMax(JSONExtractFloat(payload, 'learning_score'), (occurred_at, offset)) AS learning_score,
       argMax(JSONExtractFloat(payload, 'success_rate'), (occurred_at, offset)) AS success_rate,
       argMax(JSONExtractFloat(payload, 'failure_rate'), (occurred_at, offset)) AS failure_rate,
       argMax(JSONExtractInt(payload, 'total_learning_cycles'), (occurred_at, offset)) AS total_learning_cycles,
       argMax(JSONExtract(payload, 'improvement_suggestions', 'Array(String)'), (occurred_at, offset)) AS improvement_suggestions,
       max(occurred_at) AS updated_at
FROM {db}.events FINAL
WHERE record_type = 'agent_metrics'
GROUP BY agent_id;

-- Closed cycles per day and status: how many, how long, what they learned.
CREATE VIEW IF NOT EXISTS {db}.learning_cycles_day AS
SELECT toDate(occurred_at) AS day,
       JSONExtractString(payload, 'status') AS status,
       count() AS cycles,
       avg(JSONExtractInt(payload, 'end_time') - JSONExtractInt(payload, 'start_time')) / 1000 AS avg_duration_s,
       sum(JSONExtractInt(payload, 'success_count')) AS successes,
       sum(JSONExtractInt(payload, 'failure_count')) AS failures,
       sum(JSONExtractFloat(payload, 'total_learning_value')) AS learning_value
FROM {db}.events FINAL
WHERE record_type = 'learning_cycle_completed'
GROUP BY day, status;

-- Knowledge transfers per day, source agent → target agent.
CREATE VIEW IF NOT EXISTS {db}.knowledge_transfers_day AS
SELECT toDate(occurred_at) AS day,
       JSONExtractString(payload, 'from_agent_id') AS from_agent_id,
       agent_id AS to_agent_id,
       count() AS transfers,
       sum(JSONExtractFloat(payload, 'transfer_value')) AS transfer_value
FROM {db}.events FINAL
WHERE record_type = 'knowledge_transfer'
GROUP BY day, from_agent_id, to_agent_id;

-- Impact of each trusted source per agent and topic (internet-learning results).
CREATE VIEW IF NOT EXISTS {db}.internet_learning_by_source_day AS
SELECT agent_id,
       JSONExtractString(payload, 'topic') AS topic,
       JSONExtractString(payload, 'source_url') AS source_url,
       toDate(occurred_at) AS day,
       count() AS results,
       avg(JSONExtractFloat(payload, 'relevance_score')) AS avg_relevance,
       sum(JSONExtractFloat(payload, 'learning_value')) AS learning_value
FROM {db}.events FINAL
WHERE record_type = 'internet_learning_result'
GROUP BY agent_id, topic, source_url, day
