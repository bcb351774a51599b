"""Clients for the two stores, with no Dagster in them."""
