"""The only thing in the API that talks to Dagster: GraphQL over one HTTP client.

Every call, the run submission included, is a GraphQL POST to the webserver through a
`requests` session (one per thread: the app runs these synchronous calls in a threadpool).
Answers are read by their `__typename`: a GraphQL error type becomes a `LaunchError` with
the HTTP status the API answers; an unreachable webserver (refused, timed out, a server
error or a non-JSON answer) becomes `DagsterUnavailableError`. Nothing here imports the jobs.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests

from automem_pipelines.constants import (
    ENRICHMENT_JOB,
    ENRICHMENT_SENSOR,
    REPOSITORY_NAME,
    SUMMARY_METADATA_KEY,
    SUMMARY_OPS,
)

from . import queries
from .config import ApiConfig
from .redaction import short_id

if TYPE_CHECKING:
    from automem_pipelines.domain.enrichment_status import SchedulerState

ACTIVE_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
QUEUED_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING"]  # as automem_pipelines.status has them
STARTED_STATUSES = ["STARTED", "CANCELING"]
FINISHED_STATUSES = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
LOG_PAGE = 1000
MAX_MESSAGE = 500
# Executions read per check: the latest with a result among them is the check's state (the
# newest may be a check run still going, or one that died before reporting).
CHECK_EXECUTIONS_READ = 5


class DagsterUnavailableError(Exception):
    """The webserver did not answer (refused, timed out, or answered with a server error)."""


class LaunchError(Exception):
    """Dagster answered, but not with what we asked for; carries the HTTP status to use and
    the GraphQL type of the answer (`kind`)."""

    def __init__(self, status_code: int, message: str, kind: str = ""):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.kind = kind


@dataclass
class RunInfo:
    run_id: str
    job: str
    status: str  # Dagster's DagsterRunStatus name, e.g. QUEUED, STARTED, SUCCESS
    tags: dict[str, str] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES


@dataclass
class RunOutcome:
    """A finished run's result: the summary its summarizing op published as Output
    metadata, and, if it failed, why."""

    summary: dict[str, Any] | None
    errors: list[str]


def short_message(message: Any) -> str:
    """The first line of a message, bounded (no traceback reaches an answer)."""
    text = str(message or "").strip()
    return (text.splitlines()[0] if text else "")[:MAX_MESSAGE]


def config_errors(errors: Any) -> str:
    if isinstance(errors, list):
        parts = [
            short_message(e.get("message")) if isinstance(e, dict) else short_message(e)
            for e in errors
        ]
        return "; ".join(p for p in parts if p)[:MAX_MESSAGE]
    return short_message(errors)


def launch_error(job: str, location: str, result: dict[str, Any]) -> LaunchError:
    """A `launchRun` answer other than LaunchRunSuccess → the error the API answers."""
    kind = str(result.get("__typename") or "")
    detail = short_message(result.get("message"))
    where = f"code location {location!r}"
    if kind in ("RunConfigValidationInvalid", "PipelineConfigValidationInvalid"):
        return LaunchError(
            422,
            f"Dagster rejected the run config for {job}: {config_errors(result.get('errors'))}",
            kind,
        )
    if kind in ("JobNotFoundError", "PipelineNotFoundError"):
        return LaunchError(
            500,
            f"job {job!r} was not found in {where}: is the code location "
            "loaded and up to date with this API?",
            kind,
        )
    if kind in ("RepositoryLocationNotFound", "RepositoryNotFoundError"):
        return LaunchError(500, f"{where} is not loaded in the Dagster webserver", kind)
    if kind == "RepositoryLocationLoadFailure":
        return LaunchError(503, f"{where} failed to load in Dagster: {detail}", kind)
    if kind in ("RunConflict", "PipelineRunConflict"):
        return LaunchError(409, f"Dagster reported a conflicting run: {detail}", kind)
    return LaunchError(
        500, f"Dagster could not launch {job} ({kind or 'error'}): {detail}", kind or "UnknownError"
    )


def run_info(node: dict[str, Any]) -> RunInfo:
    return RunInfo(
        run_id=node["runId"],
        job=node["jobName"],
        status=node["status"],
        tags={t["key"]: t["value"] for t in node.get("tags") or []},
        run_config=node.get("runConfig") or {},
        created_at=node.get("creationTime"),
        started_at=node.get("startTime"),
        ended_at=node.get("endTime"),
    )


def _runs_results(result: dict[str, Any]) -> list[dict[str, Any]]:
    kind = result.get("__typename", "")
    if kind != "Runs":
        message = f"Dagster could not list runs: {short_message(result.get('message'))}"
        raise LaunchError(500, message, kind)
    return result["results"]


class DagsterGateway:
    def __init__(self, config: ApiConfig):
        self.config = config
        self._local = threading.local()

    @property
    def url(self) -> str:
        return self.config.dagster_url

    def _unavailable(self) -> DagsterUnavailableError:
        return DagsterUnavailableError(f"Dagster webserver at {self.url} is unavailable")

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    # -- the transport ------------------------------------------------------------------------
    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """One GraphQL request; its `data`."""
        try:
            response = self._session().post(
                self.config.graphql_url,
                json={"query": query, "variables": variables or {}},
                timeout=self.config.graphql_timeout_seconds,
            )
        except requests.RequestException as exc:
            raise self._unavailable() from exc
        if response.status_code >= 500:
            raise self._unavailable()
        try:
            payload = response.json()
        except ValueError:
            raise self._unavailable() from None
        if not isinstance(payload, dict) or payload.get("errors") or "data" not in payload:
            errors = payload.get("errors") if isinstance(payload, dict) else payload
            raise LaunchError(
                500, f"Dagster rejected a GraphQL query: {config_errors(errors)}", "GraphQLError"
            )
        return payload["data"]

    def ping(self) -> bool:
        try:
            self.query(queries.PING)
            return True
        except (DagsterUnavailableError, LaunchError):
            return False

    # -- runs ---------------------------------------------------------------------------------
    def submit(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        params = {
            "selector": {
                "repositoryLocationName": self.config.location_name,
                "repositoryName": REPOSITORY_NAME,
                "jobName": job,
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = self.query(queries.LAUNCH_RUN, {"executionParams": params})["launchRun"]
        if result.get("__typename") == "LaunchRunSuccess":
            return result["run"]["runId"]
        raise launch_error(job, self.config.location_name, result)

    def _run_or_error(self, query: str, run_id: str) -> dict[str, Any] | None:
        result = self.query(query, {"runId": run_id})["runOrError"]
        if result["__typename"] == "Run":
            return result
        if result["__typename"] == "RunNotFoundError":
            return None
        raise LaunchError(
            500,
            f"Dagster could not read run {short_id(run_id)}: "
            f"{short_message(result.get('message'))}",
            result["__typename"],
        )

    def run(self, run_id: str) -> RunInfo | None:
        node = self._run_or_error(queries.RUN, run_id)
        return None if node is None else run_info(node)

    def run_status(self, run_id: str) -> str | None:
        node = self._run_or_error(queries.RUN_STATUS, run_id)
        return None if node is None else node["status"]

    def runs(
        self,
        job: str,
        statuses: list[str] | None = None,
        limit: int | None = None,
        tags: dict[str, str] | None = None,
    ) -> list[RunInfo]:
        run_filter: dict[str, Any] = {"pipelineName": job}
        if statuses:
            run_filter["statuses"] = statuses
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        result = self.query(queries.RUNS, {"filter": run_filter, "limit": limit})["runsOrError"]
        return [run_info(node) for node in _runs_results(result)]

    def active_runs(self, job: str) -> list[RunInfo]:
        """Runs of the job that are queued or running, whoever started them (newest first)."""
        return self.runs(job, ACTIVE_STATUSES)

    def latest_successful_run(self, job: str) -> RunInfo | None:
        found = self.runs(job, ["SUCCESS"], limit=1)
        return found[0] if found else None

    def _log_page(self, query: str, run_id: str, cursor: str | None, limit: int) -> dict[str, Any]:
        """One `logsForRun` page (an EventConnection) of ``query``; else a LaunchError."""
        variables = {"runId": run_id, "cursor": cursor, "limit": limit}
        logs = self.query(query, variables)["logsForRun"]
        if logs["__typename"] != "EventConnection":
            raise LaunchError(
                500,
                f"Dagster could not read the events of run "
                f"{short_id(run_id)}: {short_message(logs.get('message'))}",
                logs["__typename"],
            )
        return logs

    def progress_page(
        self, run_id: str, cursor: str | None, limit: int = LOG_PAGE
    ) -> tuple[list[tuple[str | None, str, float | None]], str | None, bool]:
        """One page of the run's log messages after ``cursor``: (step key, message, epoch s)
        each, the cursor to read on from, and whether more events follow
        (automem_pipelines.run_progress.Page)."""
        logs = self._log_page(queries.RUN_PROGRESS, run_id, cursor, limit)
        events = [
            (e.get("stepKey"), e["message"], _epoch_seconds(e.get("timestamp")))
            for e in logs["events"]
            if e.get("__typename") == "LogMessageEvent" and e.get("message")
        ]
        return events, logs["cursor"] or cursor, bool(logs["hasMore"])

    def outcome(self, run_id: str, job: str) -> RunOutcome:
        """The summary (the JSON Output metadata entry `SUMMARY_METADATA_KEY` of the job's
        summarizing step) and the failure messages, from the run's structured events."""
        summary_step = SUMMARY_OPS.get(job)
        summary: dict[str, Any] | None = None
        errors: list[str] = []
        cursor: str | None = None
        while True:
            logs = self._log_page(queries.RUN_EVENTS, run_id, cursor, LOG_PAGE)
            for event in logs["events"]:
                kind = event.get("__typename")
                if kind == "ExecutionStepOutputEvent" and event.get("stepKey") == summary_step:
                    summary = _summary_entry(event.get("metadataEntries") or []) or summary
                elif kind == "ExecutionStepFailureEvent":
                    error = (event.get("error") or {}).get("message")
                    errors.append(f"{event.get('stepKey')}: {short_message(error)}")
                elif kind == "RunFailureEvent" and event.get("message"):
                    errors.append(short_message(event["message"]))
            if not logs["hasMore"]:
                return RunOutcome(summary, errors)
            cursor = logs["cursor"]

    # -- asset checks ---------------------------------------------------------------------------
    def latest_check_results(
        self, asset_key: list[str], names: tuple[str, ...] | list[str]
    ) -> dict[str, CheckResult | None]:
        """The latest result of each named check of the asset, from its check executions."""
        data = self.query(
            queries.check_executions(names, CHECK_EXECUTIONS_READ),
            {"assetKey": {"path": asset_key}},
        )
        return {name: check_result(name, data.get(name)) for name in names}

    # -- enrichment scheduler -------------------------------------------------------------------
    def scheduler_state(self) -> SchedulerState:
        """`automem_pipelines.status.scheduler_state`, fed from GraphQL: the sensor's state,
        the sensor daemon's last heartbeat, and the enrichment job's queued/started runs."""
        # imported here: the status module imports Dagster, which a client that only launches
        # and follows runs (the CLI's hand-off to a running stack) never needs
        from automem_pipelines.status import MAX_RUNS_READ, SENSOR_DAEMON, scheduler_state

        data = self.query(
            queries.SCHEDULER,
            {
                "sensor": {
                    "repositoryLocationName": self.config.location_name,
                    "repositoryName": REPOSITORY_NAME,
                    "sensorName": ENRICHMENT_SENSOR,
                },
                "daemon": SENSOR_DAEMON,
                "queued": {"pipelineName": ENRICHMENT_JOB, "statuses": QUEUED_STATUSES},
                "started": {"pipelineName": ENRICHMENT_JOB, "statuses": STARTED_STATUSES},
                "limit": MAX_RUNS_READ,
            },
        )
        sensor = data["sensorOrError"]
        known = sensor.get("__typename") == "Sensor"
        stored = (sensor.get("sensorState") or {}).get("status") if known else None
        return scheduler_state(
            sensor_status=stored,
            default_running=False,  # a sensor the webserver does not know is not running
            last_heartbeat=data["instance"]["daemonHealth"]["sensor"]["lastHeartbeatTime"],
            queued_run_configs=[r.get("runConfig") for r in _runs_results(data["queued"])],
            started_run_configs=[r.get("runConfig") for r in _runs_results(data["started"])],
        )


def _epoch_seconds(value: Any) -> float | None:
    try:
        return float(value) / 1000.0  # GraphQL timestamps are epoch milliseconds, as text
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class CheckResult:
    """The latest result of one asset check."""

    name: str
    passed: bool
    severity: str  # ERROR or WARN
    run_id: str
    evaluated_at: float  # epoch seconds
    metadata: dict[str, Any]


def _metadata_value(entry: dict[str, Any]) -> Any:
    kind = entry.get("__typename")
    if kind == "IntMetadataEntry":
        return entry.get("intValue")
    if kind == "FloatMetadataEntry":
        return entry.get("floatValue")
    if kind == "BoolMetadataEntry":
        return entry.get("boolValue")
    if kind == "TextMetadataEntry":
        return entry.get("text")
    if kind == "JsonMetadataEntry" and entry.get("jsonString"):
        return json.loads(entry["jsonString"])
    return None


def check_result(name: str, executions: list[dict[str, Any]] | None) -> CheckResult | None:
    """The newest execution that holds a result (None: the check never reported one)."""
    for execution in executions or []:
        evaluation = execution.get("evaluation")
        if evaluation:
            return CheckResult(
                name=name,
                passed=bool(evaluation["success"]),
                severity=evaluation["severity"],
                run_id=execution["runId"],
                evaluated_at=evaluation["timestamp"],
                metadata={
                    e["label"]: _metadata_value(e) for e in evaluation.get("metadataEntries") or []
                },
            )
    return None


def _summary_entry(entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    for entry in entries:
        if entry.get("label") == SUMMARY_METADATA_KEY and entry.get("jsonString"):
            return json.loads(entry["jsonString"])
    return None
