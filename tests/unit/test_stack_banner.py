"""The stack's start-up banner says where everything is: the URLs, the data dir,
DAGSTER_HOME and the folder each component's log goes to."""

from __future__ import annotations

from automem_pipelines.stack import STACK_LOG_DIR, Stack, banner
from automem_pipelines.stores import falkordb_server


def _stack(tmp_path, names=("webserver", "daemon", "api")) -> Stack:
    stack = Stack("127.0.0.1", 3123, tmp_path / "home")
    stack.log_dir.mkdir(parents=True)
    for name in names:
        (stack.log_dir / f"{name}.log").touch()
        stack.processes[name] = None  # the banner reads names only
    return stack


def test_the_banner_names_urls_folders_and_logs(make_settings, tmp_path):
    settings = make_settings()
    stack = _stack(tmp_path)
    assert stack.log_dir == tmp_path / "home" / STACK_LOG_DIR
    text = "\n".join(banner(settings, stack, ("127.0.0.1", 8123)))
    assert "Dagster UI:   http://127.0.0.1:3123" in text
    assert "Admin API:    http://127.0.0.1:8123  (OpenAPI docs at /docs)" in text
    assert f"Data dir:     {settings.data_dir}" in text
    assert f"DAGSTER_HOME: {tmp_path / 'home'}" in text
    assert f"Logs:         {stack.log_dir}/  (webserver.log, daemon.log, api.log;" in text
    assert str(falkordb_server.paths_for(settings.data_dir).logfile) in text
    assert text.endswith("Ctrl-C stops everything")


def test_the_banner_without_api_and_with_an_external_falkordb(make_settings, tmp_path):
    settings = make_settings(FALKORDB_HOST="graph.internal", FALKORDB_PORT="6380")
    text = "\n".join(banner(settings, _stack(tmp_path, ("webserver", "daemon")), None))
    assert "Admin API:    not started (--no-api)" in text
    assert "(webserver.log, daemon.log;" in text
    assert "FalkorDB:     graph.internal:6380 (external)" in text
    assert "FalkorDB log" not in text
