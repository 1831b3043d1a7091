-- How the inference workers served, per day: answers, the most answers in service at one
-- moment (continuous batching, issue #21: each inference_response was in service during
-- [occurred_at - latency_ms, occurred_at]; a running sum over the interval ends, ends sorted
-- before starts at the same millisecond), completion tokens and latency quantiles (exact:
-- a replay must give the same figures).
CREATE VIEW IF NOT EXISTS {db}.inference_serving_day AS
SELECT day,
       countIf(step = 1) AS responses,
       max(in_service) AS peak_in_service,
       sumIf(completion_tokens, step = 1) AS completion_tokens,
       quantileExactIf(0.5)(latency_ms, step = 1) AS latency_p50_ms,
       quantileExactIf(0.99)(latency_ms, step = 1) AS latency_p99_ms
FROM (
    SELECT toDate(at) AS day, step, completion_tokens, latency_ms,
           sum(step) OVER (ORDER BY at ASC, step ASC, event_id ASC
                           ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS in_service
    FROM (
        SELECT event_id,
               JSONExtractFloat(payload, 'latency_ms') AS latency_ms,
               JSONExtractInt(payload, 'completion_tokens') AS completion_tokens,
               edge.1 AS at, edge.2 AS step
        FROM {db}.events FINAL
        ARRAY JOIN [(occurred_at - toIntervalMillisecond(toInt64(
                         JSONExtractFloat(payload, 'latency_ms'))), toInt8(1)),
                    (occurred_at, toInt8(-1))] AS edge
        WHERE record_type = 'inference_response'
    )
)
GROUP BY day
