"""The admin HTTP API: AutoMem's admin endpoints, each operation a Dagster run started over
GraphQL (see app.py). Run it with `automem-api`."""

__version__ = "0.1.0"
