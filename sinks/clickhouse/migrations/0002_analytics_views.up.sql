-- Analytics views over events FINAL: always exact under redelivery, computed at query time.
CREATE VIEW IF NOT EXISTS {db}.learning_by_agent_topic_day AS
SELECT agent_id,
       JSONExtractString(payload, 'topic') AS topic,
       toDate(occurred_at) AS day,
       count() AS events,
       sum(JSONExtractFloat(payload, 'learning_value')) AS learning_value,
       avg(JSONExtractFloat(payload, 'impact_score')) AS avg_impact
FROM {db}.events FINAL
WHERE record_type = 'learning_event'
GROUP BY agent_id, topic, day;

CREATE VIEW IF NOT EXISTS {db}.custody_pass_rate_day AS
SELECT agent_id,
       JSONExtractString(payload, 'category') AS category,
       JSONExtractString(payload, 'tier') AS tier,
       toDate(occurred_at) AS day,
       count() AS items,
       countIf(JSONExtractBool(payload, 'passed')) AS passed,
       passed / items AS pass_rate
FROM {db}.events FINAL
WHERE record_type = 'custody_item_result'
GROUP BY agent_id, category, tier, day;

CREATE VIEW IF NOT EXISTS {db}.inference_by_route_day AS
SELECT JSONExtractString(payload, 'route') AS route,
       toDate(occurred_at) AS day,
       count() AS responses,
       quantile(0.5)(JSONExtractFloat(payload, 'latency_ms')) AS latency_p50_ms,
       quantile(0.99)(JSONExtractFloat(payload, 'latency_ms')) AS latency_p99_ms,
       sum(JSONExtractInt(payload, 'prompt_tokens')) AS prompt_tokens,
       sum(JSONExtractInt(payload, 'completion_tokens')) AS completion_tokens,
       sum(JSONExtractFloat(payload, 'cost_usd')) AS cost_usd
FROM {db}.events FINAL
WHERE record_type = 'inference_response'
GROUP BY route, day;

CREATE VIEW IF NOT EXISTS {db}.tokens_by_model_day AS
SELECT JSONExtractString(payload, 'model') AS model,
       agent_id,
       toDate(occurred_at) AS day,
       count() AS requests,
       sum(JSONExtractInt(payload, 'prompt_tokens')) AS prompt_tokens,
       sum(JSONExtractInt(payload, 'completion_tokens')) AS completion_tokens,
       sum(JSONExtractFloat(payload, 'cost_usd')) AS cost_usd
FROM {db}.events FINAL
WHERE record_type = 'token_usage'
GROUP BY model, agent_id, day;

CREATE VIEW IF NOT EXISTS {db}.guardian_findings_day AS
SELECT JSONExtractString(payload, 'severity') AS severity,
       JSONExtractString(payload, 'rule_id') AS rule_id,
       toDate(occurred_at) AS day,
       count() AS findings
FROM {db}.events FINAL
WHERE record_type = 'guardian_finding'
GROUP BY severity, rule_id, day
