"""automem-pipelines: Dagster jobs that maintain an AutoMem-style memory store."""
