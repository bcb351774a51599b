"""`automem-pipelines reembed --stack URL`: the CLI hands the run to a running stack's Dagster
over GraphQL (through the admin API's gateway), waits, and prints the same summary and exit
code as when it runs the job itself, without importing Dagster."""

from __future__ import annotations

import json
import subprocess
import sys

import dagster as dg
import pytest

from automem_pipelines.constants import OPERATOR_PRIORITY, REEMBED_JOB, TAG_PRIORITY, TAG_TRIGGER
from automem_pipelines.stack import running_stack
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port
from tests.support.drills import drill_root, stack_env
from tests.support.local_qdrant import point_count

pytestmark = pytest.mark.slow

# Runs the CLI's main() and reports on stderr's last line whether Dagster got imported.
RUN_CLI = """
import sys
from automem_pipelines.cli import main
try:
    main(sys.argv[1:])
finally:
    print("dagster imported:", "dagster" in sys.modules, file=sys.stderr)
"""


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, *args], env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def stack():
    from automem_pipelines.definitions import build_resources
    from automem_pipelines.settings import Settings

    with drill_root("amh-") as root:
        env = stack_env(root)
        settings = Settings.from_env(env)
        with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
            load_sample(graph, 120)
        with running_stack(settings, port=free_port(), env=env) as running:
            yield settings, env, running


def test_reembed_handed_to_a_running_stack_prints_the_in_process_summary(stack):
    settings, env, running = stack
    handed = cli(env, "reembed", "--force", "--batch-size", "32", "--stack", running.url)
    assert handed.returncode == 0, handed.stderr
    assert handed.stderr.splitlines()[-1] == "dagster imported: False"
    summary = json.loads(handed.stdout)
    assert summary["processed"] == 120 and summary["failed"] == 0
    assert point_count(settings) == 120

    with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(job_name=REEMBED_JOB))
        assert len(runs) == 1
        run = runs[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags[TAG_TRIGGER] == "cli"
        # launched over GraphQL, the run has the job's tag: ahead of the sensor's runs
        assert run.tags[TAG_PRIORITY] == OPERATOR_PRIORITY
        assert run.run_id in handed.stderr  # the CLI names the run it launched
    # it followed the run's progress over GraphQL: plain lines (stderr is a pipe), the last
    # state always shown
    assert "run progress reembed_chunk: 120/120 (" in handed.stderr, handed.stderr

    # the same job in this process (same DAGSTER_HOME, the stack idle): the same summary
    local = cli(env, "reembed", "--force", "--batch-size", "32")
    assert local.returncode == 0, local.stderr
    assert local.stderr.splitlines()[-1] == "dagster imported: True"
    assert "run progress reembed_chunk: 120/120 (" in local.stderr, local.stderr
    in_process = json.loads(local.stdout)
    assert in_process["processed"] == 120
    assert summary.keys() == in_process.keys()
    timing = {k for k in summary if "second" in k or k.endswith("_s") or "rate" in k}
    assert {k: v for k, v in summary.items() if k not in timing} == {
        k: v for k, v in in_process.items() if k not in timing
    }


def test_a_launch_the_stack_refuses_exits_non_zero_with_dagsters_reason(stack):
    _, env, running = stack
    refused = cli(
        {**env, "DAGSTER_LOCATION_NAME": "no_such_location"},
        "reembed",
        "--stack",
        running.url,
    )
    assert refused.returncode == 1
    assert "no_such_location" in refused.stderr
    assert refused.stdout == ""
