"""`automem-pipelines stack`: one command brings up FalkorDB, dagster-webserver,
dagster-daemon and the admin API, and one SIGINT stops all of them."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests

from automem_pipelines.stores import falkordb_server
from tests.support.dagster_stack import free_port

pytestmark = pytest.mark.slow
START_LIMIT = 180.0  # bound on waiting for start-up, not an assertion about speed


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_stack_command_starts_everything_and_stops_cleanly():
    root = Path(tempfile.mkdtemp(prefix="ams-"))
    env = {
        k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("OPENAI")
    }
    env.update(
        {
            "AUTOMEM_DATA_DIR": str(root),
            "EMBEDDING_PROVIDER": "local",
            "ENRICHMENT_SENSOR_ENABLED": "false",
        }
    )
    env.pop("AUTOMEM_API_TOKEN", None)
    web_port, api_port = free_port(), free_port()
    command = [
        str(Path(sys.executable).parent / "automem-pipelines"),
        "stack",
        "--port",
        str(web_port),
        "--api-port",
        str(api_port),
    ]
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []  # what the command prints, read as it goes
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def said() -> str:
        return "".join(lines)

    try:
        deadline = time.monotonic() + START_LIMIT
        health = None
        # up once the banner is out (the API answers a moment before the banner is printed)
        while time.monotonic() < deadline and proc.poll() is None:
            if "Ctrl-C stops everything" in said() and _answers(
                f"http://127.0.0.1:{api_port}/health"
            ):
                health = requests.get(f"http://127.0.0.1:{api_port}/health", timeout=30).json()
                break
            time.sleep(0.5)
        if health is None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            proc.wait(90)
            reader.join(10)
            pytest.fail(f"the stack never came up; the stack command said:\n{said()[-3000:]}")
        assert health["dagster"] == "reachable" and health["falkordb"] == "connected"
        assert _answers(f"http://127.0.0.1:{web_port}/server_info")
        docs = requests.get(f"http://127.0.0.1:{api_port}/docs", timeout=30).text
        assert "/static-offline-docs/swagger-ui-bundle.js" in docs and "cdn" not in docs
        assert _answers(f"http://127.0.0.1:{api_port}/static-offline-docs/swagger-ui-bundle.js")

        proc.send_signal(signal.SIGINT)
        proc.wait(90)
        reader.join(10)
        output = said()
        assert proc.returncode == 0, output
        assert "stack stopped" in output
        # the banner: URLs, data dir, DAGSTER_HOME, and the log folder, which holds the logs
        home = (root / "dagster_home").resolve()
        assert f"Dagster UI:   http://127.0.0.1:{web_port}" in output
        assert f"Admin API:    http://127.0.0.1:{api_port}" in output
        assert f"Data dir:     {root}" in output and f"DAGSTER_HOME: {home}" in output
        assert (
            f"Logs:         {home / 'stack-logs'}/  (webserver.log, daemon.log, api.log;" in output
        )
        for name in ("webserver", "daemon", "api"):
            assert (home / "stack-logs" / f"{name}.log").stat().st_size > 0, name
        assert f"FalkorDB log: {root / 'falkordb' / 'falkordb.log'}" in output
        assert not _answers(f"http://127.0.0.1:{api_port}/health")
        assert not _answers(f"http://127.0.0.1:{web_port}/server_info")
        assert not falkordb_server.is_running(root)
    finally:
        if proc.poll() is None:  # a failed assertion: still stop the children it started
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)
