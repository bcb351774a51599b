"""The admin HTTP API (see its own issue); starts Dagster runs over GraphQL."""
