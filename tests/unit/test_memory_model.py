from automem_pipelines.domain.memory import (
    merged_payload,
    node_props_for_write,
    parse_metadata,
    parse_tags,
    payload_from_node,
    tag_prefixes,
)
from automem_pipelines.domain.sample import sample_memories


def test_tag_prefixes_as_automem_computes_them():
    assert tag_prefixes(["a/b:c"]) == ["a", "a:b", "a:b:c"]
    assert tag_prefixes(["Project:Atlas", "project:beta"]) == [
        "project",
        "project:atlas",
        "project:beta",
    ]


def test_metadata_and_tags_parsing_keeps_everything():
    assert parse_metadata('{"a": 1}') == {"a": 1}
    assert parse_metadata("not json") == {"_raw_metadata": "not json"}
    assert parse_metadata("[1, 2]") == {"_raw_metadata": [1, 2]}
    assert parse_metadata(None) == {}
    assert parse_tags('["x", "y"]') == ["x", "y"] and parse_tags(["x", " "]) == ["x"]


def test_payload_from_node_applies_automem_defaults_only_when_missing():
    payload = payload_from_node(
        {"id": "1", "content": "c", "metadata": '{"k": "v"}', "tags": ["a/b"]}
    )
    assert payload["metadata"] == {"k": "v"} and payload["tag_prefixes"] == ["a", "a:b"]
    assert (payload["importance"], payload["type"], payload["confidence"]) == (0.5, "Context", 0.6)
    kept = payload_from_node({"id": "1", "importance": 0.9, "type": "Decision", "confidence": 0.2})
    assert (kept["importance"], kept["type"], kept["confidence"]) == (0.9, "Decision", 0.2)


def test_merge_keeps_point_only_fields_and_takes_graph_values():
    existing = {"content": "old", "relevance_score": 0.4, "pinned": True}
    merged = merged_payload(existing, {"id": "1", "content": "new"}, {"content_hash": "h"})
    assert (
        merged["content"] == "new" and merged["pinned"] is True and merged["relevance_score"] == 0.4
    )
    assert merged["content_hash"] == "h"


def test_sample_store_is_deterministic_and_varied():
    a = list(sample_memories(300, seed=3))
    b = list(sample_memories(300, seed=3))
    assert [m["id"] for m in a] == [m["id"] for m in b] and [m["content"] for m in a] == [
        m["content"] for m in b
    ]
    assert len({m["type"] for m in a}) == 7
    lengths = sorted(len(m["content"]) for m in a)
    assert lengths[0] < 120 and lengths[-1] > 600
    assert len({m["id"] for m in a}) == 300
    props = node_props_for_write(a[0])
    assert isinstance(props["metadata"], str) and isinstance(props["tags"], list)
