DROP VIEW IF EXISTS {db}.inference_serving_day
