"""The store AutoMem 0.16.1 wrote (tests/fixtures/automem-0.16.1-store, README inside), loaded
into the real stores exactly as it is: nodes with AutoMem's properties (metadata a JSON
string), its SIMILAR_TO relationships, and its points (payloads without any stamp of ours,
1024-d vectors from its embedding worker) in a collection created as AutoMem creates it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import models

from automem_pipelines.stores.graph import GraphStore
from automem_pipelines.stores.vectors import VectorStore

FIXTURE_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "automem-0.16.1-store"
DIM = 1024
# The model AutoMem was configured with when it wrote the fixture (its defaults: an
# OpenAI-compatible endpoint, EMBEDDING_MODEL text-embedding-3-small, VECTOR_SIZE 1024).
MODEL = "text-embedding-3-small"


@dataclass
class AutoMemStore:
    nodes: list[dict[str, Any]]  # properties
    points: list[dict[str, Any]]  # id, payload, vector (np.float32)
    relationships: list[dict[str, Any]]

    @property
    def ids(self) -> list[str]:
        return [n["id"] for n in self.nodes]


def read_fixture(root: Path = FIXTURE_DIR) -> AutoMemStore:
    def lines(name: str) -> list[dict[str, Any]]:
        with open(root / name, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    nodes = [row["properties"] for row in lines("nodes.jsonl")]
    points = [
        {
            "id": row["id"],
            "payload": row["payload"],
            "vector": np.frombuffer(base64.b64decode(row["vector_f32le_b64"]), dtype="<f4").astype(
                np.float32
            ),
        }
        for row in lines("points.jsonl")
    ]
    return AutoMemStore(nodes, points, lines("relationships.jsonl"))


def load_fixture(
    graph: GraphStore, vectors: VectorStore, store: AutoMemStore | None = None
) -> AutoMemStore:
    store = store or read_fixture()
    graph.ensure_indexes()
    graph.upsert_memories(store.nodes)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for rel in store.relationships:
        by_type.setdefault(rel["type"], []).append(
            {"a": rel["source"], "b": rel["target"], "props": rel["properties"]}
        )
    for rel_type, rows in by_type.items():
        graph.query(
            f"UNWIND $rows AS row MATCH (a:Memory {{id: row.a}}), (b:Memory {{id: row.b}}) "
            f"MERGE (a)-[r:{rel_type}]->(b) SET r += row.props",
            {"rows": rows},
        )
    vectors.client.create_collection(  # as AutoMem creates it: unnamed vector, cosine
        vectors.collection,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
    )
    vectors.upsert(
        [p["id"] for p in store.points],
        np.vstack([p["vector"] for p in store.points]),
        [p["payload"] for p in store.points],
    )
    return store


def snapshot(graph: GraphStore, vectors: VectorStore) -> dict[str, Any]:
    """Everything both stores hold for the memories: node properties, relationships, every
    point's payload and vector bytes, and the collection's configuration and metadata."""
    nodes = {row[0]: row[1] for row in graph.query("MATCH (m:Memory) RETURN m.id, properties(m)")}
    rels = sorted(
        (a, t, b, json.dumps(p, sort_keys=True))
        for a, t, b, p in graph.query(
            "MATCH (a:Memory)-[r]->(b:Memory) RETURN a.id, type(r), b.id, properties(r)"
        )
    )
    points = {}
    for page in vectors.scroll(page=1000, with_payload=True, with_vectors=True):
        for rec in page:
            points[str(rec.id)] = (
                json.dumps(rec.payload, sort_keys=True),
                np.asarray(rec.vector, dtype=np.float32).tobytes(),
            )
    info = vectors.client.get_collection(vectors.collection)
    return {
        "nodes": nodes,
        "relationships": rels,
        "points": points,
        "collection": info.config.model_dump_json(),
    }
