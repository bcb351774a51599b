"""The GraphQL document the API and the CLI read progress events with is valid against the
schema of the Dagster webserver we pin (dagster_graphql's own schema, no server needed)."""

from __future__ import annotations

import graphql
import pytest
from dagster_graphql.schema import create_schema

from automem_api import queries


@pytest.fixture(scope="module")
def schema():
    made = create_schema()
    return getattr(made, "graphql_schema", made)


def test_the_progress_query_is_valid_for_dagsters_schema(schema):
    assert graphql.validate(schema, graphql.parse(queries.RUN_PROGRESS)) == []


def test_a_field_the_schema_lacks_is_caught(schema):
    broken = queries.RUN_PROGRESS.replace("message stepKey timestamp", "message stepKey progress")
    assert graphql.validate(schema, graphql.parse(broken)) != []
