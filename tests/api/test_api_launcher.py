"""How Dagster's answers map to HTTP statuses (DagsterGraphQLClientError's first argument is
the GraphQL type name)."""

from __future__ import annotations

import pytest
import requests
from dagster_graphql import DagsterGraphQLClientError

from automem_api.config import ApiConfig
from automem_api.launcher import DagsterLauncher, DagsterUnavailableError, LaunchError


@pytest.fixture
def launcher(make_settings) -> DagsterLauncher:
    return DagsterLauncher(ApiConfig(settings=make_settings(), api_token=None, admin_token=None))


@pytest.mark.parametrize(
    "args,status,needle",
    [
        (("RunConfigValidationInvalid", [{"message": "Invalid scalar at path batch_size"}]), 422,
         "Invalid scalar at path batch_size"),
        (("PipelineNotFoundError", "Could not find Pipeline"), 500, "was not found in code location"),
        (("JobNotFoundError", "nope"), 500, "was not found in code location"),
        (("RepositoryLocationNotFound", "nope"), 500, "is not loaded"),
        (("RepositoryLocationLoadFailure", "ImportError: x\nTraceback..."), 503, "failed to load"),
        (("RunConflict", "conflict"), 409, "conflicting run"),
        (("PythonError", "boom\n  File x.py, line 1"), 500, "boom"),
    ],
)  # fmt: skip
def test_client_errors_map_to_statuses(launcher, args, status, needle):
    mapped = launcher._map_client_error("reembed_job", DagsterGraphQLClientError(*args))
    assert isinstance(mapped, LaunchError)
    assert mapped.status_code == status and needle in mapped.message
    assert "Traceback" not in mapped.message and "File x.py" not in mapped.message


def test_connection_failures_are_unavailable(launcher):
    error = DagsterGraphQLClientError("Error when connecting to url http://x/graphql")
    error.__cause__ = requests.exceptions.ConnectionError("refused")
    assert isinstance(launcher._map_client_error("reembed_job", error), DagsterUnavailableError)
