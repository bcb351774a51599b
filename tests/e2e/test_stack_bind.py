"""The Dagster webserver has no authentication of its own, so the stack binds it to loopback and
refuses any other address unless told (`--allow-remote-webserver`,
`AUTOMEM_ALLOW_REMOTE_WEBSERVER=true`). That it really listens on loopback only, and that the
Dagster processes never get the API tokens, is checked on a running stack in
test_secrets_e2e.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from automem_pipelines import cli, stack
from automem_pipelines.settings import Settings
from automem_pipelines.stack import (
    ALLOW_REMOTE_WEBSERVER_ENV,
    UnsafeBindError,
    allow_remote_from_env,
    check_webserver_bind,
    is_loopback,
    start_stack,
)
from automem_pipelines.stores import falkordb_server
from tests.support.dagster_stack import free_port

LOOPBACK = ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST", "localhost."]
REMOTE = [
    "0.0.0.0",
    "::",
    "",
    "192.168.1.5",
    "10.0.0.1",
    "::ffff:10.0.0.1",
    "example.com",
    "my-laptop",
]


@pytest.mark.parametrize("host", LOOPBACK)
def test_loopback_addresses_are_accepted(host):
    assert is_loopback(host)
    check_webserver_bind(host)


@pytest.mark.parametrize("host", REMOTE)
def test_other_addresses_are_refused_unless_allowed(host):
    assert not is_loopback(host)
    with pytest.raises(UnsafeBindError) as info:
        check_webserver_bind(host)
    message = str(info.value)
    assert f"refusing to bind the Dagster webserver to {host!r}" in message
    assert "--allow-remote-webserver" in message and ALLOW_REMOTE_WEBSERVER_ENV in message
    assert "authenticating proxy" in message
    check_webserver_bind(host, allow_remote=True)


def test_allow_env_values():
    for value in ("1", "true", "TRUE", "yes", "on", " true "):
        assert allow_remote_from_env({ALLOW_REMOTE_WEBSERVER_ENV: value})
    for value in ("", "0", "false", "no", "off", "maybe"):
        assert not allow_remote_from_env({ALLOW_REMOTE_WEBSERVER_ENV: value})
    assert not allow_remote_from_env({})


def test_start_stack_refuses_before_starting_anything():
    root = Path(tempfile.mkdtemp(prefix="amb-"))
    try:
        settings = Settings.from_env({"AUTOMEM_DATA_DIR": str(root)})
        with pytest.raises(UnsafeBindError):
            start_stack(settings, host="0.0.0.0", port=free_port())
        assert not falkordb_server.is_running(root)
        assert not (root / "dagster_home").exists()
    finally:
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def test_stack_command_passes_the_flag_and_the_env_variable(monkeypatch, data_dir):
    calls: list[dict] = []
    monkeypatch.setattr(stack, "serve_forever", lambda *a, **kw: calls.append(kw))
    monkeypatch.setenv("AUTOMEM_DATA_DIR", str(data_dir))
    monkeypatch.delenv(ALLOW_REMOTE_WEBSERVER_ENV, raising=False)
    cli.main(["stack", "--host", "0.0.0.0"])
    cli.main(["stack", "--host", "0.0.0.0", "--allow-remote-webserver"])
    monkeypatch.setenv(ALLOW_REMOTE_WEBSERVER_ENV, "true")
    cli.main(["stack", "--host", "0.0.0.0"])
    assert [c["allow_remote_webserver"] for c in calls] == [False, True, True]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_stack_command_refuses_a_non_loopback_webserver(host):
    root = Path(tempfile.mkdtemp(prefix="amb-"))
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update({"AUTOMEM_DATA_DIR": str(root), ALLOW_REMOTE_WEBSERVER_ENV: "false"})
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "automem-pipelines"),
        "stack",
        "--host",
        host,
        "--port",
        str(port),
        "--api-port",
        str(free_port()),
    ]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode != 0
        assert f"refusing to bind the Dagster webserver to {host!r}" in result.stderr
        assert "--allow-remote-webserver" in result.stderr
        assert "Dagster UI:" not in result.stdout  # it never got as far as starting
        assert not _listening(port)
        assert not falkordb_server.is_running(root)
        assert not (root / "dagster_home").exists()
    finally:
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)
