DROP VIEW IF EXISTS {db}.guardian_findings_day;
DROP VIEW IF EXISTS {db}.tokens_by_model_day;
DROP VIEW IF EXISTS {db}.inference_by_route_day;
DROP VIEW IF EXISTS {db}.custody_pass_rate_day;
DROP VIEW IF EXISTS {db}.learning_by_agent_topic_day
