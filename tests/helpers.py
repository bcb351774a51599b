"""Small helpers shared by tests."""

from __future__ import annotations

import uuid
from typing import Any

import dagster as dg

from automem_pipelines import runs
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.settings import Settings


def load_sample(graph, count: int, seed: int = 7) -> list[dict[str, Any]]:
    rows = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    graph.ensure_indexes()
    graph.upsert_memories(rows)
    return rows


def new_id() -> str:
    return str(uuid.uuid4())


def run_reembed(
    settings: Settings, resources: dict | None = None, raise_on_error: bool = True, **config
) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).get_job_def("reembed_job")
    return job.execute_in_process(
        run_config=reembed_run_config(**config),
        resources=resources or build_resources(settings, from_env=False),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def summary_of(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    return result.output_for_node("summarize_reembed")


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(runs.failure_messages(result))
