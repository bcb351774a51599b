"""The Dagster calls of the pre-forked run launcher (``run_workers.py``) that are not public
API, pinned for the project's Dagster: checked by tests/unit/test_dagster_contract.py and by
the worker server at start, which refuses to start (the launcher then falls back to Dagster's
default launch path) when one of them changed."""

from __future__ import annotations

import importlib
import inspect
from typing import Any

# Dagster calls that are not public API, pinned for the project's dagster==1.13.27: (module,
# attribute, the parameters our calls rely on in order, or EXISTS, or PROPERTY). A parameter
# list must be the start of the real one, and any further parameter optional.
EXISTS, PROPERTY = "exists", "property"
PRIVATE_API: tuple[tuple[str, str, tuple[str, ...] | str], ...] = (
    # what a forked worker runs: `dagster api execute_run` without its CLI wrapper
    (
        "dagster._cli.api",
        "_execute_run_command_body",
        ("run_id", "instance", "write_stream_fn", "set_exit_code_on_failure"),
    ),
    ("dagster._utils.interrupts", "capture_interrupts", ()),
    # the run-monitoring answer, and the launcher hooks Dagster calls
    ("dagster._core.launcher", "CheckRunHealthResult", ("status", "msg")),
    ("dagster._core.launcher", "WorkerStatus.RUNNING", EXISTS),
    ("dagster._core.launcher", "WorkerStatus.FAILED", EXISTS),
    ("dagster._core.launcher", "RunLauncher.supports_check_run_worker_health", PROPERTY),
    ("dagster._core.launcher", "RunLauncher.check_run_worker_health", ("self", "run")),
    ("dagster._core.launcher", "RunLauncher.terminate", ("self", "run_id")),
    ("dagster._core.launcher", "RunLauncher.launch_run", ("self", "context")),
    ("dagster._core.launcher", "RunLauncher.join", ("self", "timeout")),
    ("dagster._core.launcher", "RunLauncher.dispose", ("self",)),
    ("dagster._core.launcher", "LaunchRunContext.dagster_run", EXISTS),
    ("dagster", "DefaultRunLauncher.__init__", ("self", "inst_data")),
    ("dagster", "DefaultRunLauncher.launch_run", ("self", "context")),
    ("dagster", "DefaultRunLauncher.terminate", ("self", "run_id")),
    ("dagster", "DefaultRunLauncher.join", ("self", "timeout")),
    # the pid a worker records when it starts (read for runs started the default way)
    ("dagster._core.events", "EngineEventData.in_process", ("pid",)),
    # instance methods that are not marked public
    ("dagster", "DagsterInstance.from_ref", ("instance_ref",)),
    ("dagster", "DagsterInstance.get_ref", ("self",)),
    ("dagster", "DagsterInstance.add_run_tags", ("self", "run_id", "new_tags")),
    ("dagster", "DagsterInstance.all_logs", ("self", "run_id", "of_type")),
    ("dagster", "DagsterInstance.report_engine_event", ("self", "message", "dagster_run")),
    ("dagster", "DagsterInstance.report_run_canceling", ("self", "run", "message")),
    ("dagster", "DagsterInstance.report_run_canceled", ("self", "dagster_run", "message")),
    ("dagster", "DagsterInstance.report_run_failed", ("self", "dagster_run", "message")),
)


def _resolve(module: str, attribute: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
    return obj


def private_api_problems() -> list[str]:
    """What no longer matches PRIVATE_API in the installed Dagster (empty when all does)."""
    problems = []
    for module, attribute, expected in PRIVATE_API:
        name = f"{module}.{attribute}"
        try:
            obj = _resolve(module, attribute)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{name} is missing ({type(exc).__name__}: {exc})")
            continue
        if expected == EXISTS:
            continue
        if expected == PROPERTY:
            if not isinstance(obj, property):
                problems.append(f"{name} is no longer a property ({type(obj).__name__})")
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError) as exc:
            problems.append(f"{name} has no signature ({exc})")
            continue
        names = [p.name for p in params]
        if names[: len(expected)] != list(expected):
            problems.append(
                f"{name}{inspect.signature(obj)}: expected parameters {list(expected)} first"
            )
            continue
        optional = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        required = [
            p.name
            for p in params[len(expected) :]
            if p.default is inspect.Parameter.empty and p.kind not in optional
        ]
        if required:
            problems.append(f"{name} has new required parameters {required}")
    return problems
