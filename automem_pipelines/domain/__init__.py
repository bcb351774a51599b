"""Plain-Python domain logic: no Dagster imports below this package."""
