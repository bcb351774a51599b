"""End to end: a real dagster-webserver + dagster-daemon on loopback; memories inserted into
the graph get enriched by sensor-launched runs, with no manual step."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
import requests

from automem_pipelines.constants import ENRICHMENT_JOB, TAG_TRIGGER
from automem_pipelines.definitions import build_resources
from automem_pipelines.domain.memory import parse_metadata
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack, start_api
from automem_pipelines.stores import falkordb_server
from tests.support.api import ADMIN_TOKEN, API_TOKEN
from tests.support.dagster_stack import free_port
from tests.support.enrichment import insert, memory, reembed

WAIT_SECONDS = 240


def wait_processed(graph, ids: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = graph.query(
            "MATCH (m:Memory) WHERE m.id IN $ids AND m.processed = true RETURN count(m)",
            {"ids": ids},
        )[0][0]
        if done == len(ids):
            return
        time.sleep(1)
    raise AssertionError(f"memories not enriched within {timeout:.0f}s")


def dump_stack_logs(root: Path, lines: int = 60) -> None:
    """On failure, show what the webserver and daemon said (the data dir is then deleted)."""
    for log in sorted(root.glob("**/stack-logs/*.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        print(f"----- {log.name} (last {len(tail)} lines) -----", *tail, sep="\n")


@pytest.mark.slow
def test_sensor_enriches_new_memories_with_no_manual_step():
    root = Path(tempfile.mkdtemp(prefix="ame-"))  # short: the FalkorDB socket lives here
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(root),
        "ENRICHMENT_SENSOR_INTERVAL_SECONDS": "2",
        "ENRICHMENT_SENSOR_BATCH_SIZE": "50",
        "AUTOMEM_API_TOKEN": API_TOKEN,
        "ADMIN_API_TOKEN": ADMIN_TOKEN,
    }
    env.pop("DAGSTER_HOME", None)
    settings = Settings.from_env(env)
    res = build_resources(settings, from_env=False)
    first = [str(uuid.uuid4()) for _ in range(3)]
    late = str(uuid.uuid4())
    saved_home = os.environ.get("DAGSTER_HOME")  # start_stack exports its own
    try:
        with res["falkordb"].get_store() as graph:
            insert(
                graph,
                [
                    memory(
                        first[0],
                        "Deployed SuperWhisper with Alice during Project Launchpad review.",
                        1,
                    ),
                    memory(
                        first[1], "Deployed SuperWhisper with Alice during the Launchpad review.", 2
                    ),
                    memory(first[2], "Met with Bob Chen in Berlin to plan Project Atlas.", 3),
                ],
            )
            reembed(settings)  # its run closed the local Qdrant store: the stack's runs can open it
            with running_stack(settings, port=free_port(), env=env) as stack:
                api_port = free_port()
                start_api(stack, port=api_port, env=env)
                wait_processed(graph, first, WAIT_SECONDS)
                insert(
                    graph,
                    [memory(late, "Chose PostgreSQL for the Orion queue with Priya Nair.", 0.5)],
                )
                wait_processed(graph, [late], WAIT_SECONDS)

                instance = dg.DagsterInstance.from_config(str(stack.dagster_home))
                runs = instance.get_runs(
                    dg.RunsFilter(job_name=ENRICHMENT_JOB, tags={TAG_TRIGGER: "sensor"})
                )
                assert runs and all(
                    r.status == dg.DagsterRunStatus.SUCCESS for r in runs if r.is_finished
                )
                # What the API answers (the scheduler's state read over GraphQL, the stats
                # from the graph): the product's path to this status.
                answer = requests.get(
                    f"http://127.0.0.1:{api_port}/enrichment/status",
                    headers={"Authorization": f"Bearer {API_TOKEN}"},
                    timeout=60,
                )
                assert answer.status_code == 200, answer.text
                status = answer.json()
                assert status["status"] == "running"
                assert status["stats"]["successes"] >= 4 and status["stats"]["failures"] == 0

            a = graph.fetch_properties([first[0]])[first[0]]
            assert a["enriched"] is True and a["summary"].startswith("Deployed SuperWhisper")
            assert "entity:tools:superwhisper" in a["tags"]
            meta = parse_metadata(a["metadata"])
            assert meta["enrichment"]["temporal_links"] == 2
            assert first[1] in [n["id"] for n in meta["enrichment"]["semantic_neighbors"]]
            late_meta = parse_metadata(graph.fetch_properties([late])[late]["metadata"])
            assert late_meta["enrichment"]["temporal_links"] == 3
    except BaseException:
        dump_stack_logs(root)
        raise
    finally:
        if saved_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved_home
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)
