"""The drift-sync job against real stores: FalkorDB (embedded server) and Qdrant local mode."""

from __future__ import annotations

import json
import uuid

import dagster as dg
import numpy as np
import pytest

from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.embeddings import local_provider
from automem_pipelines.domain.memory import (
    content_hash,
    make_stamps,
    merged_payload,
    node_props_for_write,
    parse_metadata,
)
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.run_config import sync_run_config
from automem_pipelines.stores.graph import GraphStore
from automem_pipelines.stores.vectors import VectorStore

SUMMARY_OP = "summarize_sync"


def run_sync(settings, resources, raise_on_error=True, **config) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).get_job_def("drift_sync_job")
    return job.execute_in_process(
        run_config=sync_run_config(**config), resources=resources, raise_on_error=raise_on_error
    )


def summary_of(result: dg.ExecuteInProcessResult) -> dict:
    assert result.success
    return result.output_for_node(SUMMARY_OP)


def seed_graph(graph: GraphStore, count: int, seed: int = 11) -> list[dict]:
    memories = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    graph.ensure_indexes()
    graph.upsert_memories(memories)
    return memories


def seed_points(vectors: VectorStore, memories: list[dict], dim: int = 256) -> None:
    """Points exactly as the re-embed path writes them (merged payload + stamps), with the
    local model's vectors."""
    vectors.ensure_collection(dim)
    provider = local_provider()
    embedded = provider.embed([m["content"] for m in memories]).vectors
    payloads = [
        merged_payload(None, m, make_stamps(content_hash(m["content"]), "local", provider.model, dim))
        for m in memories
    ]
    vectors.upsert([m["id"] for m in memories], embedded, payloads)


def graph_snapshot(graph: GraphStore) -> dict[str, dict]:
    return {row[0]: dict(row[1]) for row in graph.scan("m.id, properties(m)")}


def vector_snapshot(vectors: VectorStore) -> dict[str, tuple]:
    if vectors.collection_dim() is None:
        return {}
    out = {}
    for page in vectors.scroll(page=1000, with_payload=True, with_vectors=True):
        for rec in page:
            out[str(rec.id)] = (json.dumps(rec.payload, sort_keys=True), list(rec.vector))
    return out


def test_missing_detected_repaired_then_synced(settings, resources, graph, vector_store):
    memories = seed_graph(graph, 30)
    result = run_sync(settings, resources)
    summary = summary_of(result)
    assert summary["status"] == "complete"
    assert summary["missing_count"] == 30 and summary["missing_synced"] == 30
    assert summary["synced"] == 30 and summary["failed"] == 0
    assert vector_store.count() == 30
    payload = vector_store.payloads([memories[0]["id"]])[memories[0]["id"]]
    assert payload["content_hash"] == content_hash(memories[0]["content"])
    assert payload["embedding_provider"] == "local" and payload["embedding_dim"] == 256
    again = summary_of(run_sync(settings, resources))
    assert again["status"] == "already_synced"
    assert all(again[f"{k}_count"] == 0 for k in ("missing", "orphaned", "stale_vector", "payload_drift"))
