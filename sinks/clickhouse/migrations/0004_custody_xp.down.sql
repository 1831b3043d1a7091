DROP VIEW IF EXISTS {db}.custody_xp_day
