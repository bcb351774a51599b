"""The private Dagster calls of the pre-forked run launcher, pinned against the installed
(pinned) Dagster: every private callable's signature, every preloaded private module, and
that the worker server refuses to start when one of them changed."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
from pathlib import Path

import dagster
import pytest

from automem_pipelines import run_workers
from automem_pipelines.run_workers import (
    PRIVATE_API,
    WARM_MODULES,
    WorkerServer,
    missing_warm_modules,
    private_api_problems,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_dagster_is_the_pinned_one():
    pin = re.search(r'"dagster==([^"]+)"', (ROOT / "pyproject.toml").read_text()).group(1)
    assert dagster.__version__ == pin  # a new Dagster: check PRIVATE_API against it first


@pytest.mark.parametrize("module,attribute,expected", PRIVATE_API, ids=lambda v: str(v))
def test_each_private_call_has_the_pinned_shape(module, attribute, expected):
    obj = importlib.import_module(module)
    for part in attribute.split("."):
        obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
    if expected == run_workers.PROPERTY:
        assert isinstance(obj, property)
    elif expected != run_workers.EXISTS:
        obj = obj.__func__ if isinstance(obj, (staticmethod, classmethod)) else obj
        params = list(inspect.signature(obj).parameters.values())
        assert [p.name for p in params[: len(expected)]] == list(expected)
        assert all(
            p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
            for p in params[len(expected) :]
        )


def test_the_check_the_server_runs_finds_nothing_wrong():
    assert private_api_problems() == []


def test_every_preloaded_module_exists():
    assert missing_warm_modules() == []
    assert any(name.startswith("dagster._") for name in WARM_MODULES)


def _private_imports(path: Path) -> set[tuple[str, str]]:
    """(module, name) of every `from dagster._… import name` run at import or call time
    (imports under `if TYPE_CHECKING:` are for annotations only)."""
    tree = ast.parse(path.read_text())
    type_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and getattr(block.test, "id", "") == "TYPE_CHECKING"
        for node in ast.walk(block)
    }
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.startswith("dagster._") for a in node.names):
            raise AssertionError(f"line {node.lineno}: import the names, so they can be pinned")
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._"):
            if id(node) not in type_only:
                found |= {(node.module, alias.name) for alias in node.names}
    return found


def test_every_private_import_of_the_launcher_is_pinned():
    pinned = {(module, attribute.split(".")[0]) for module, attribute, _ in PRIVATE_API}
    used = _private_imports(Path(run_workers.__file__))
    assert used, "the launcher imports private Dagster names; the parser found none"
    assert used <= pinned, f"not in PRIVATE_API: {sorted(used - pinned)}"


def test_a_changed_signature_or_a_missing_name_is_reported(monkeypatch):
    import dagster._cli.api as api
    from dagster._core.launcher import RunLauncher

    monkeypatch.setattr(api, "_execute_run_command_body", lambda run_id, instance: 0)
    monkeypatch.delattr(RunLauncher, "check_run_worker_health")
    problems = private_api_problems()
    assert len(problems) == 2
    assert "dagster._cli.api._execute_run_command_body" in problems[0]
    assert "'write_stream_fn', 'set_exit_code_on_failure'" in problems[0]
    assert problems[1].startswith(
        "dagster._core.launcher.RunLauncher.check_run_worker_health is missing"
    )


def test_a_new_required_parameter_is_reported(monkeypatch):
    import dagster._utils.interrupts as interrupts

    monkeypatch.setattr(interrupts, "capture_interrupts", lambda strict: None)
    [problem] = private_api_problems()
    assert "capture_interrupts has new required parameters ['strict']" in problem


def test_a_worker_server_refuses_to_start_when_the_private_api_changed():
    with pytest.raises(RuntimeError) as raised:
        WorkerServer(["tests.support.breaks_dagster_contract"])
    message = str(raised.value)
    assert "did not start: the private Dagster API it relies on changed" in message
    assert (
        "dagster._cli.api._execute_run_command_body(run_id, instance, write_stream_fn)" in message
    )


def test_a_worker_server_reports_preload_modules_this_dagster_lacks():
    server = WorkerServer(["tests.support.adds_missing_warm_module"])
    try:
        assert server.missing_warm_modules == ["dagster._no_such_module_for_tests"]
        assert server.alive()
    finally:
        server.stop()
