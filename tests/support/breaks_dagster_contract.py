"""Preloaded by a worker server in tests: gives a private Dagster function the launcher calls
another signature, as a Dagster upgrade could. The server must refuse to start."""

import dagster._cli.api as api


def _execute_run_command_body(run_id, instance, write_stream_fn):  # noqa: ARG001
    raise AssertionError("never called: the server checks the signature before any run")


api._execute_run_command_body = _execute_run_command_body
