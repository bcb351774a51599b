"""The API's routes, one router per concern: status (health, enrichment status), admin
(jobs launched as Dagster runs) and runs (reading a run back)."""
