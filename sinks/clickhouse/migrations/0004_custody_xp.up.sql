-- Custody progression over time (issue #7): XP gained per agent and day and the running
-- total, from the run results in events FINAL (exact under redelivery).
CREATE VIEW IF NOT EXISTS {db}.custody_xp_day AS
SELECT agent_id,
       day,
       runs,
       passed_runs,
       xp_gained,
       sum(xp_gained) OVER (PARTITION BY agent_id ORDER BY day
                            ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS xp_total
FROM (
    SELECT agent_id,
           toDate(occurred_at) AS day,
           count() AS runs,
           countIf(JSONExtractString(payload, 'verdict') = 'passed') AS passed_runs,
           sum(JSONExtractInt(payload, 'xp_awarded')) AS xp_gained
    FROM {db}.events FINAL
    WHERE record_type = 'custody_run_result'
    GROUP BY agent_id, day
)
