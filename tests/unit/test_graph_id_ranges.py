"""The graph's id-range filter (a partition of the store) on the real embedded FalkorDB."""

from __future__ import annotations

from automem_pipelines.domain.partitions import id_range, partition_ranges
from automem_pipelines.domain.selection import enumerate_ids
from automem_pipelines.stores import graph as graph_mod
from tests.helpers import load_sample

ODD = ["", "Legacy-7", "ZZ", "zzz", "19", "33"]


def test_ranges_split_the_store_exactly_once_with_odd_ids_and_small_pages(graph, monkeypatch):
    monkeypatch.setattr(graph_mod, "SCAN_PAGE", 97)  # many node-id pages per range
    rows = load_sample(graph, 1500)
    graph.upsert_memories([{"id": mid, "content": f"odd {mid}"} for mid in ODD])
    graph.query("CREATE (:Memory {id: 42, content: 'an integer id'})")
    graph.query("CREATE (:Memory {content: 'no id at all'})")
    everything = list(graph.memory_ids())
    assert len(everything) == 1500 + len(ODD) + 2

    seen: list = []
    for r in partition_ranges(10):
        part = list(graph.memory_ids(id_range=r))
        assert all(r.contains(m if isinstance(m, str) else str(m or "")) for m in part), r.key
        assert graph.count_memories(id_range=r) == len(part)
        seen += part
    assert sorted(seen, key=repr) == sorted(everything, key=repr)  # each node exactly once
    assert graph.count_memories() == len(everything)
    assert {r["id"] for r in rows} <= set(seen)


def test_the_range_bounds_are_inclusive_below_and_exclusive_above(graph):
    graph.upsert_memories([{"id": i, "content": "x"} for i in ["18ff", "19", "19aa", "32ff", "33"]])
    assert sorted(graph.memory_ids(id_range=id_range("19-32"))) == ["19", "19aa", "32ff"]
    assert sorted(graph.memory_ids(id_range=id_range("00-18"))) == ["18ff"]
    assert sorted(graph.memory_ids(id_range=id_range("33-ff"))) == ["33"]


def test_newest_with_content_and_excluded_types_keep_to_the_range(graph):
    rows = load_sample(graph, 400)
    r = id_range("80-ff")
    inside = [x for x in rows if r.contains(x["id"])]
    newest = sorted(inside, key=lambda x: x["timestamp"], reverse=True)[:7]
    assert list(enumerate_ids(graph, 7, id_range=r)) == [[x["id"] for x in newest]]
    segments = list(enumerate_ids(graph, None, segment=50, id_range=r))
    assert {m for part in segments for m in part} == {x["id"] for x in inside}
    assert max(len(part) for part in segments) == 50
    some_type = inside[0]["type"]
    kept = {x["id"] for x in inside if x["type"] != some_type}
    assert set(graph.memory_ids([some_type], id_range=r)) == kept
    assert graph.count_memories([some_type], id_range=r) == len(kept)
