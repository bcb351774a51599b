"""What a new user gets wrong ends in one clear message and a non-zero exit, never a
traceback: the CLI is run as a subprocess, as they run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.dagster_stack import free_port

REPO = Path(__file__).resolve().parents[2]
GOOD = '{"content": "a good memory"}'


@pytest.fixture
def run_cli(settings, tmp_path):
    """The CLI in a subprocess against this test's graph on the session's embedded FalkorDB."""
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(settings.data_dir),
        "FALKORDB_GRAPH": settings.falkordb.graph,
        "QDRANT_COLLECTION": settings.qdrant.collection,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }

    def run(*args: str, prefix: tuple[str, ...] = (), **more: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*prefix, sys.executable, "-m", "automem_pipelines.cli", *args],
            env={**env, **more},
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    return run


def refused(done: subprocess.CompletedProcess, *phrases: str) -> str:
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr
    return done.stderr


def test_import_of_a_missing_file(run_cli, tmp_path):
    missing = tmp_path / "nope.jsonl"
    err = refused(run_cli("import", str(missing)), f"{missing}: no such file")
    assert len(err.strip().splitlines()) == 1


def test_import_of_a_directory(run_cli, tmp_path):
    refused(run_cli("import", str(tmp_path)), f"{tmp_path}: is a directory")


def test_import_of_an_unreadable_file(run_cli, tmp_path):
    path = tmp_path / "secret.jsonl"
    path.write_text(GOOD + "\n")
    path.chmod(0)
    # root reads any file: run the CLI as root without its capabilities, so modes apply
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to drop root's capabilities"
        prefix = (setpriv, "--bounding-set=-all", "--inh-caps=-all")
    refused(run_cli("import", str(path), prefix=prefix), f"{path}: permission denied")


def test_import_reports_every_bad_line_and_writes_nothing(run_cli, graph, tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        GOOD,
        "{broken",
        GOOD.replace("a good", "another good"),
        '{"content": ""}',
        "",
        '{"content": "x", "importance": 7}',
        '["not", "an", "object"]',
        '{"id": "0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11", "content": "first"}',
        '{"id": "0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11", "content": "again"}',
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b'{"content": "\xff\xfe"}\n')
    err = refused(
        run_cli("import", str(path)),
        "refused, nothing written",
        f"6 bad lines in {path}",
        "line 2: not valid JSON",
        "line 4: field 'content' must be a non-empty string",
        "line 6: field 'importance' must be a number from 0.0 to 1.0",
        "line 7: expected a JSON object, got list",
        "line 9: id 0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11 already on line 8",
        "line 10: not UTF-8 text",
    )
    for good in ("line 1:", "line 3:", "line 5:", "line 8:"):
        assert good not in err
    assert graph.count_memories() == 0


def test_import_of_a_good_file_still_works(run_cli, graph, tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_text(GOOD + "\n\n" + GOOD.replace("good", "fine") + "\n")
    done = run_cli("import", str(path))
    assert done.returncode == 0, done.stderr
    assert "imported 2 memories" in done.stdout
    assert graph.count_memories() == 2


def test_an_unreachable_falkordb_is_one_message(run_cli, tmp_path):
    path = tmp_path / "good.jsonl"
    path.write_text(GOOD + "\n")
    port = str(free_port())  # nothing listens there
    for args in (("import", str(path)), ("sample", "--count", "3", "--load")):
        err = refused(
            run_cli(*args, FALKORDB_HOST="127.0.0.1", FALKORDB_PORT=port),
            f"FalkorDB 127.0.0.1:{port}",
            "is unreachable",
        )
        assert len(err.strip().splitlines()) == 1, err


def test_a_bad_option_value_is_a_usage_message(run_cli):
    refused(run_cli("sample", "--count", "0"), "--count: must be at least 1")
    refused(run_cli("sample", "--count", "many"), "--count: 'many' is not a whole number")
    refused(run_cli("reembed", "--batch-size", "0"), "batch_size must be an integer from 1")


def test_sample_out_to_a_missing_folder(run_cli, tmp_path):
    target = tmp_path / "no" / "such" / "dir.jsonl"
    refused(run_cli("sample", "--out", str(target)), f"cannot write {target}")


def test_sample_load_refuses_a_graph_that_holds_memories(run_cli, graph):
    done = run_cli("sample", "--count", "20", "--load")
    assert done.returncode == 0, done.stderr
    assert graph.count_memories() == 20
    ids = [
        json.loads(line)["id"] for line in run_cli("sample", "--count", "20").stdout.splitlines()
    ]
    assert len(ids) == 20
    # enrichment happened on one of them
    graph.graph.query(
        "MATCH (m:Memory {id: $id}) SET m.processed = true, m.enriched_at = 'then'",
        {"id": ids[0]},
    )

    err = refused(
        run_cli("sample", "--count", "20", "--load"),
        "already holds 20 memories",
        "Pass --replace",
    )
    assert "reset their enrichment" in err
    props = graph.fetch_properties([ids[0]])[ids[0]]
    assert props["processed"] is True and props["enriched_at"] == "then"  # untouched

    done = run_cli("sample", "--count", "20", "--load", "--replace")
    assert done.returncode == 0, done.stderr
    props = graph.fetch_properties([ids[0]])[ids[0]]
    assert props["processed"] is False  # what --replace is for, and what its help says
    assert graph.count_memories() == 20


def test_replace_without_load_is_refused(run_cli):
    refused(run_cli("sample", "--replace"), "--replace only applies with --load")
