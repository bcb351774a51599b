"""The JSON Lines importer and the sample generator, through the CLI."""

import json

import pytest

from automem_pipelines import cli


@pytest.fixture
def cli_env(monkeypatch, settings):
    monkeypatch.setenv("AUTOMEM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FALKORDB_GRAPH", settings.falkordb.graph)
    monkeypatch.setenv("QDRANT_COLLECTION", settings.qdrant.collection)
    return settings


def test_import_writes_automem_shape(cli_env, graph, tmp_path):
    path = tmp_path / "m.jsonl"
    records = [
        {
            "id": "0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11",
            "content": "Chose Qdrant for vectors",
            "tags": ["project/atlas", "infra"],
            "metadata": {"source": "chat"},
            "type": "Decision",
            "importance": 0.8,
            "timestamp": "2026-10-01T10:00:00+00:00",
        },
        {"content": "A memory without an id gets a UUID", "tags": '["x"]'},
    ]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    cli.main(["import", str(path)])
    props = graph.fetch_properties(["0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11"])[
        "0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11"
    ]
    assert props["metadata"] == '{"source": "chat"}'
    assert props["tags"] == ["project/atlas", "infra"]
    assert props["tag_prefixes"] == ["project", "project:atlas", "infra"]
    assert props["t_valid"] == props["timestamp"] == "2026-10-01T10:00:00+00:00"
    assert props["processed"] is False and props["importance"] == 0.8
    assert graph.count_memories() == 2
    cli.main(["import", str(path)])  # MERGE by id: the record with an id is not duplicated
    assert graph.count_memories() == 3  # the id-less record got a fresh UUID again


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"content": ""}', "line 2: field 'content' must be a non-empty string"),
        ('{"content": "x", "id": "nope"}', "line 2: field 'id' must be a UUID"),
        (
            '{"content": "x", "importance": 3}',
            "line 2: field 'importance' must be a number from 0.0 to 1.0",
        ),
        (
            '{"content": "x", "timestamp": "yesterday"}',
            "line 2: field 'timestamp' must be an ISO-8601",
        ),
        ("{broken", "line 2: not valid JSON"),
    ],
)
def test_a_bad_line_writes_nothing(cli_env, graph, tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"content": "good one"}\n' + line + "\n")
    with pytest.raises(SystemExit) as info:
        cli.main(["import", str(path)])
    assert message in str(info.value) and "nothing written" in str(info.value)
    assert graph.count_memories() == 0


def test_sample_roundtrip_through_jsonl(cli_env, graph, tmp_path):
    path = tmp_path / "sample.jsonl"
    cli.main(["sample", "--count", "50", "--out", str(path)])
    cli.main(["import", str(path)])
    assert graph.count_memories() == 50
