-- inference_by_route_day with exact quantiles: quantile() samples above 8,192 values, so the
-- same events could give other figures (and a replay could not prove the view). Exact costs
-- memory per group (one route × day), which is small here.
DROP VIEW IF EXISTS {db}.inference_by_route_day;
CREATE VIEW {db}.inference_by_route_day AS
SELECT JSONExtractString(payload, 'route') AS route,
       toDate(occurred_at) AS day,
       count() AS responses,
       quantileExact(0.5)(JSONExtractFloat(payload, 'latency_ms')) AS latency_p50_ms,
       quantileExact(0.99)(JSONExtractFloat(payload, 'latency_ms')) AS latency_p99_ms,
       sum(JSONExtractInt(payload, 'prompt_tokens')) AS prompt_tokens,
       sum(JSONExtractInt(payload, 'completion_tokens')) AS completion_tokens,
       sum(JSONExtractFloat(payload, 'cost_usd')) AS cost_usd
FROM {db}.events FINAL
WHERE record_type = 'inference_response'
GROUP BY route, day
