"""The CLI does no work at import: importing it (and asking for help) loads neither Dagster nor
the settings, and a hand-off to a stack that is not there fails with a plain message. What a
run needs before its first step (the code location, the store modules) imports no heavy
client library: qdrant-client is imported when a Qdrant client is built, inside a step."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.dagster_stack import free_port

HEAVY = (
    "dagster",
    "dagster_graphql",
    "qdrant_client",
    "pydantic",
    "automem_pipelines.settings",
    "spacy",
    "openai",
    "model2vec",
    "tokenizers",
    "httpx",
)
# Imported in a step when the run first needs it, never by building the code location.
NOT_BEFORE_A_STEP = {"qdrant_client", "spacy", "openai", "model2vec", "tokenizers"}


def loaded_after(code: str) -> set[str]:
    """Which of HEAVY are imported once `code` ran (the probe's last line; help text precedes
    it)."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(out.splitlines()[-1].split()) if out.strip() else set()


def test_importing_the_cli_loads_neither_dagster_nor_the_settings():
    assert loaded_after("import automem_pipelines.cli") == set()


def test_help_loads_no_dagster():
    code = "from automem_pipelines.cli import main\ntry:\n    main(['reembed', '--help'])\n"
    code += "except SystemExit:\n    pass"
    assert loaded_after(code) == set()


def test_the_admin_api_gateway_loads_no_dagster():
    loaded = loaded_after("import automem_api.gateway")
    assert "dagster" not in loaded and "qdrant_client" not in loaded


def test_the_store_modules_load_no_qdrant_client():
    loaded = loaded_after("import automem_pipelines.stores.vectors, automem_pipelines.stores")
    assert "qdrant_client" not in loaded


def test_building_the_code_location_loads_no_client_library(tmp_path):
    """What the CLI's in-process path (and each run worker) does before the run's first
    step: import the definitions, build them, and get the job."""
    code = (
        "import os\n"
        f"os.environ.update(AUTOMEM_DATA_DIR={str(tmp_path)!r}, EMBEDDING_PROVIDER='local')\n"
        "from automem_pipelines.definitions import defs\n"
        "from automem_pipelines.constants import REEMBED_JOB\n"
        "defs().get_job_def(REEMBED_JOB)"
    )
    loaded = loaded_after(code)
    assert "dagster" in loaded  # the probe did build the code location
    assert loaded & NOT_BEFORE_A_STEP == set()


def test_a_store_opened_imports_qdrant_client(tmp_path):
    """The other side of the lazy import: opening a store still works and loads the client."""
    code = (
        "from pathlib import Path\n"
        "from automem_pipelines.stores.vectors import VectorConfig, open_store\n"
        f"config = VectorConfig(None, None, 'memories', Path({str(tmp_path)!r}), 5, 1.0)\n"
        "with open_store(config) as store:\n"
        "    assert store.ensure_collection(4) and store.collection_dim() == 4\n"
        "    assert store.count() == 0"
    )
    assert "qdrant_client" in loaded_after(code)


def test_a_hand_off_to_no_stack_exits_non_zero_naming_the_url(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update({"AUTOMEM_DATA_DIR": str(tmp_path), "EMBEDDING_PROVIDER": "local"})
    proc = subprocess.run(
        [sys.executable, "-m", "automem_pipelines.cli", "reembed", "--stack", url],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert url in proc.stderr and "automem-pipelines stack" in proc.stderr
    assert proc.stdout == ""
