DROP VIEW IF EXISTS {db}.internet_learning_by_source_day;
DROP VIEW IF EXISTS {db}.knowledge_transfers_day;
DROP VIEW IF EXISTS {db}.learning_cycles_day;
DROP VIEW IF EXISTS {db}.agent_metrics_latest
