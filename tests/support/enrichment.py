"""Helpers for the enrichment tests: memories, runs, and reading the graph back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from automem_pipelines.constants import ENRICHMENT_JOB, REEMBED_JOB, SUMMARY_OPS
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.memory import dump_metadata, node_props_for_write, tag_prefixes
from automem_pipelines.run_config import enrichment_run_config, reembed_run_config
from automem_pipelines.settings import Settings
from automem_pipelines.stores.graph import GraphStore


def memory(
    mid: str,
    content: Any,
    hours_ago: float,
    mtype: str = "Context",
    confidence: float = 0.9,
    tags: list[str] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    ts = ((now or datetime.now(UTC)) - timedelta(hours=hours_ago)).isoformat()
    tags = tags if tags is not None else ["project/launchpad"]
    return {
        "id": mid,
        "content": content,
        "timestamp": ts,
        "type": mtype,
        "confidence": confidence,
        "importance": 0.5,
        "tags": tags,
        "tag_prefixes": tag_prefixes(tags),
        "metadata": dump_metadata({"source": "test"}),
        "processed": False,
    }


def insert(graph: GraphStore, memories: list[dict[str, Any]]) -> None:
    graph.ensure_indexes()
    rows = []
    for m in memories:
        row = node_props_for_write({k: v for k, v in m.items() if k != "content"})
        row["content"] = m["content"]  # may be deliberately not a string
        rows.append(row)
    graph.upsert_memories(rows)


def reembed(settings: Settings) -> dict:
    job = build_definitions(settings).get_job_def(REEMBED_JOB)
    result = job.execute_in_process(
        run_config=reembed_run_config(), resources=build_resources(settings, from_env=False)
    )
    return result.output_for_node(SUMMARY_OPS[REEMBED_JOB])


def enrich(
    settings: Settings,
    ids: list[str],
    forced: bool = False,
    instance: dg.DagsterInstance | None = None,
) -> dict:
    job = build_definitions(settings).get_job_def(ENRICHMENT_JOB)
    result = job.execute_in_process(
        run_config=enrichment_run_config(ids, forced),
        resources=build_resources(settings, from_env=False),
        instance=instance,
    )
    assert result.success
    return result.output_for_node(SUMMARY_OPS[ENRICHMENT_JOB])


def edges(graph: GraphStore, rel: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = graph.query(
        f"MATCH (a)-[r:{rel}]->(b) RETURN a.id, "
        "CASE WHEN 'Pattern' IN labels(b) THEN b.type ELSE b.id END, properties(r)"
    )
    return {(a, b): dict(p) for a, b, p in rows}


def without(props: dict[str, dict[str, Any]], *keys: str) -> dict:
    return {k: {f: v for f, v in p.items() if f not in keys} for k, p in props.items()}


def node(graph: GraphStore, mid: str) -> dict[str, Any]:
    return graph.fetch_properties([mid])[mid]
