"""VectorStore.write_vectors: new vectors and merged payload keys, no payload read back."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from automem_pipelines.stores import vectors
from automem_pipelines.stores.vectors import VectorConfig


@pytest.fixture(params=["server path", "local path"])
def store(request, tmp_path):
    """The same result both ways: the server's operations (run by local mode, which implements
    them) and the in-process merge a local store gets."""
    config = VectorConfig(":memory:", None, "c", tmp_path, 30, 5)
    with vectors.open_store(config) as opened:
        opened.server_writes = request.param == "server path"
        opened.ensure_collection(4)
        yield opened


def unit(*values: float) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return v / np.linalg.norm(v)


def test_existing_points_keep_their_other_keys_and_new_points_get_exactly_the_payload(store):
    old, fresh = str(uuid.uuid4()), str(uuid.uuid4())
    store.upsert(
        [old],
        np.stack([unit(1, 0, 0, 0)]),
        [{"content": "before", "t_valid": "2025-01-01", "relevance_score": 0.7}],
    )
    created = store.write_vectors(
        [old, fresh],
        np.stack([unit(0, 1, 0, 0), unit(0, 0, 1, 0)]),
        [
            {"content": "after", "embedding_stamp": "s1"},
            {"content": "new", "embedding_stamp": "s2"},
        ],
    )
    assert created == 1
    got = store.retrieve([old, fresh], with_payload=True, with_vectors=True)
    assert got[old].payload == {
        "content": "after",
        "t_valid": "2025-01-01",
        "relevance_score": 0.7,
        "embedding_stamp": "s1",
    }
    assert got[fresh].payload == {"content": "new", "embedding_stamp": "s2"}
    assert np.allclose(got[old].vector, unit(0, 1, 0, 0), atol=1e-6)
    assert np.allclose(got[fresh].vector, unit(0, 0, 1, 0), atol=1e-6)


def test_the_server_path_never_reads_a_payload_back(tmp_path, monkeypatch):
    with vectors.open_store(VectorConfig(":memory:", None, "c", tmp_path, 30, 5)) as store:
        store.server_writes = True
        store.ensure_collection(4)
        _writes_without_reading_back(store, monkeypatch)


def _writes_without_reading_back(store, monkeypatch):
    pid = str(uuid.uuid4())
    store.upsert([pid], np.stack([unit(1, 1, 0, 0)]), [{"content": "x", "keep": 1}])
    seen = []
    real = store.client.retrieve

    def spy(*args, **kwargs):
        seen.append(kwargs.get("with_payload"))
        return real(*args, **kwargs)

    monkeypatch.setattr(store.client, "retrieve", spy)
    store.write_vectors([pid], np.stack([unit(1, 0, 1, 0)]), [{"content": "y"}])
    assert seen == [False]
    assert store.payloads([pid]) == {pid: {"content": "y", "keep": 1}}


def test_length_mismatch_is_refused_before_any_write(store):
    pid = str(uuid.uuid4())
    with pytest.raises(ValueError, match="differ in length"):
        store.write_vectors([pid], np.zeros((2, 4), np.float32), [{}])
    assert store.count() == 0
