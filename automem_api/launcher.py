"""Everything the API asks of Dagster, over HTTP: the webserver's GraphQL endpoint.

Runs are submitted with `dagster_graphql.DagsterGraphQLClient` (location and repository
named explicitly); reads the client has no method for (a run with its tags, run lists for
conflict detection, a finished run's summary metadata, sensor and daemon state) are plain
GraphQL POSTs. Nothing here imports the jobs. Every call is synchronous: the app runs them
in a threadpool, and each thread gets its own client and HTTP session (the gql transport
behind the client is not safe to share between threads).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from gql.transport.exceptions import TransportServerError

from automem_pipelines.constants import (
    ENRICHMENT_JOB,
    ENRICHMENT_SENSOR,
    REPOSITORY_NAME,
    SUMMARY_METADATA_KEY,
    SUMMARY_OPS,
)
from automem_pipelines.run_config import ENRICHMENT_CONFIG_OP

from .config import ApiConfig
from .redaction import short_id

ACTIVE_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"]
# As automem_pipelines.status counts them for the enrichment status.
QUEUED_STATUSES = ["QUEUED", "NOT_STARTED", "STARTING"]
STARTED_STATUSES = ["STARTED", "CANCELING"]
MAX_RUNS_READ = 1000
FINISHED_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}
LOG_PAGE = 1000
MAX_MESSAGE = 500


class DagsterUnavailableError(Exception):
    """The webserver did not answer (refused, timed out, or answered with a server error)."""


class LaunchError(Exception):
    """Dagster answered, but not with what we asked for; carries the HTTP status to use."""

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
    """What a finished run's event log says: its summary and, if it failed, why."""

    summary: dict[str, Any] | None
    errors: list[str]


RUN_FIELDS = "runId jobName status creationTime startTime endTime tags { key value } runConfig"

RUN_QUERY = f"""
query Run($runId: ID!) {{
  runOrError(runId: $runId) {{
    __typename
    ... on Run {{ {RUN_FIELDS} }}
    ... on RunNotFoundError {{ message }}
    ... on PythonError {{ message }}
  }}
}}"""

RUN_STATUS_QUERY = """
query RunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}"""

RUNS_QUERY = f"""
query Runs($filter: RunsFilter, $limit: Int) {{
  runsOrError(filter: $filter, limit: $limit) {{
    __typename
    ... on Runs {{ results {{ {RUN_FIELDS} }} }}
    ... on InvalidPipelineRunsFilterError {{ message }}
    ... on PythonError {{ message }}
  }}
}}"""

LOGS_QUERY = """
query Logs($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor
      hasMore
      events {
        __typename
        ... on ExecutionStepOutputEvent {
          stepKey
          metadataEntries { label ... on JsonMetadataEntry { jsonString } }
        }
        ... on ExecutionStepFailureEvent { stepKey error { message } }
        ... on RunFailureEvent { message }
      }
    }
    ... on RunNotFoundError { message }
    ... on PythonError { message }
  }
}"""

SCHEDULER_QUERY = """
query Scheduler($sensor: SensorSelector!, $queued: RunsFilter, $started: RunsFilter, $limit: Int) {
  sensorOrError(sensorSelector: $sensor) {
    __typename
    ... on Sensor { sensorState { status } }
  }
  instance {
    daemonHealth {
      sensor: daemonStatus(daemonType: "SENSOR") { healthy }
    }
  }
  queued: runsOrError(filter: $queued, limit: $limit) {
    __typename
    ... on Runs { results { runConfig } }
  }
  started: runsOrError(filter: $started, limit: $limit) {
    __typename
    ... on Runs { results { runConfig } }
  }
}"""

PING_QUERY = "query Ping { version }"


def _short(message: Any) -> str:
    text = str(message or "").strip()
    first = text.splitlines()[0] if text else ""
    return first[:MAX_MESSAGE]


def _config_errors(body: Any) -> str:
    if isinstance(body, list):
        parts = [_short(e.get("message")) if isinstance(e, dict) else _short(e) for e in body]
        return "; ".join(p for p in parts if p)[:MAX_MESSAGE]
    return _short(body)


class DagsterLauncher:
    def __init__(self, config: ApiConfig):
        self.config = config
        self._local = threading.local()

    # -- plumbing -----------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.config.dagster_url

    def _unavailable(self) -> DagsterUnavailableError:
        return DagsterUnavailableError(f"Dagster webserver at {self.url} is unavailable")

    def _client(self) -> DagsterGraphQLClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = DagsterGraphQLClient(
                self.config.dagster_hostname,
                port_number=self.config.dagster_port,
                use_https=self.config.dagster_https,
                timeout=int(self.config.graphql_timeout_seconds),
            )
            self._local.client = client
        return client

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
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
                500, f"Dagster rejected a GraphQL query: {_config_errors(errors)}", "GraphQLError"
            )
        return payload["data"]

    def ping(self) -> bool:
        try:
            self.query(PING_QUERY)
            return True
        except (DagsterUnavailableError, LaunchError):
            return False

    # -- runs ---------------------------------------------------------------------------------
    def submit(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        try:
            return self._client().submit_job_execution(
                job,
                repository_location_name=self.config.location_name,
                repository_name=REPOSITORY_NAME,
                run_config=run_config,
                tags=tags,
            )
        except DagsterGraphQLClientError as exc:
            raise self._map_client_error(job, exc) from None

    def _map_client_error(self, job: str, exc: DagsterGraphQLClientError) -> Exception:
        cause = exc.__cause__
        if isinstance(cause, (requests.RequestException, TransportServerError)):
            return self._unavailable()
        kind = str(exc.args[0]) if exc.args else ""
        detail = exc.args[1] if len(exc.args) > 1 else exc.body
        where = f"code location {self.config.location_name!r}"
        if kind in ("RunConfigValidationInvalid", "PipelineConfigValidationInvalid"):
            return LaunchError(
                422, f"Dagster rejected the run config for {job}: {_config_errors(detail)}", kind
            )
        if kind in ("JobNotFoundError", "PipelineNotFoundError"):
            return LaunchError(
                500, f"job {job!r} was not found in {where}: is the code location loaded and "
                "up to date with this API?", kind,
            )  # fmt: skip
        if kind in ("RepositoryLocationNotFound", "RepositoryNotFoundError"):
            return LaunchError(500, f"{where} is not loaded in the Dagster webserver", kind)
        if kind == "RepositoryLocationLoadFailure":
            return LaunchError(503, f"{where} failed to load in Dagster: {_short(detail)}", kind)
        if kind == "RunConflict":
            return LaunchError(409, f"Dagster reported a conflicting run: {_short(detail)}", kind)
        if kind.startswith(("Error when connecting", "Exception occured", "Server error")):
            return self._unavailable()
        return LaunchError(500, f"Dagster could not launch {job} ({kind or 'error'}): "
                           f"{_short(detail)}", kind or "DagsterGraphQLClientError")  # fmt: skip

    @staticmethod
    def _run_info(node: dict[str, Any]) -> RunInfo:
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

    def run(self, run_id: str) -> RunInfo | None:
        result = self.query(RUN_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] == "Run":
            return self._run_info(result)
        if result["__typename"] == "RunNotFoundError":
            return None
        raise LaunchError(
            500, f"Dagster could not read run {short_id(run_id)}: {_short(result.get('message'))}"
        )

    def run_status(self, run_id: str) -> str | None:
        result = self.query(RUN_STATUS_QUERY, {"runId": run_id})["runOrError"]
        if result["__typename"] == "Run":
            return result["status"]
        if result["__typename"] == "RunNotFoundError":
            return None
        raise LaunchError(
            500, f"Dagster could not read run {short_id(run_id)}: {_short(result.get('message'))}"
        )

    def runs(self, job: str, statuses: list[str] | None = None, limit: int | None = None,
             tags: dict[str, str] | None = None) -> list[RunInfo]:  # fmt: skip
        run_filter: dict[str, Any] = {"pipelineName": job}
        if statuses:
            run_filter["statuses"] = statuses
        if tags:
            run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
        result = self.query(RUNS_QUERY, {"filter": run_filter, "limit": limit})["runsOrError"]
        if result["__typename"] != "Runs":
            raise LaunchError(500, f"Dagster could not list runs: {_short(result.get('message'))}")
        return [self._run_info(node) for node in result["results"]]

    def active_runs(self, job: str) -> list[RunInfo]:
        """Runs of the job that are queued or running, whoever started them (newest first)."""
        return self.runs(job, ACTIVE_STATUSES)

    def latest_successful_run(self, job: str) -> RunInfo | None:
        found = self.runs(job, ["SUCCESS"], limit=1)
        return found[0] if found else None

    def outcome(self, run_id: str, job: str) -> RunOutcome:
        """Read the run's events: the summary op's JSON metadata and any failure messages."""
        summary_step = SUMMARY_OPS.get(job)
        summary: dict[str, Any] | None = None
        errors: list[str] = []
        cursor: str | None = None
        while True:
            result = self.query(LOGS_QUERY, {"runId": run_id, "cursor": cursor, "limit": LOG_PAGE})
            logs = result["logsForRun"]
            if logs["__typename"] != "EventConnection":
                raise LaunchError(500, f"Dagster could not read the events of run {short_id(run_id)}: "
                                  f"{_short(logs.get('message'))}")  # fmt: skip
            for event in logs["events"]:
                kind = event.get("__typename")
                if kind == "ExecutionStepOutputEvent" and event.get("stepKey") == summary_step:
                    for entry in event.get("metadataEntries") or []:
                        if entry.get("label") == SUMMARY_METADATA_KEY and entry.get("jsonString"):
                            summary = json.loads(entry["jsonString"])
                elif kind == "ExecutionStepFailureEvent":
                    error = (event.get("error") or {}).get("message")
                    errors.append(f"{event.get('stepKey')}: {_short(error)}")
                elif kind == "RunFailureEvent" and event.get("message"):
                    errors.append(_short(event["message"]))
            if not logs["hasMore"]:
                return RunOutcome(summary, errors)
            cursor = logs["cursor"]

    # -- enrichment scheduler -------------------------------------------------------------------
    def scheduler_state(self) -> dict[str, Any]:
        """Sensor state, sensor-daemon health and the enrichment job's queued/started runs,
        with the same statuses and id counting as `automem_pipelines.status` uses in process.

        Returns the fields of `automem_pipelines.domain.enrichment_status.SchedulerState`.
        """
        data = self.query(
            SCHEDULER_QUERY,
            {
                "sensor": {
                    "repositoryLocationName": self.config.location_name,
                    "repositoryName": REPOSITORY_NAME,
                    "sensorName": ENRICHMENT_SENSOR,
                },
                "queued": {"pipelineName": ENRICHMENT_JOB, "statuses": QUEUED_STATUSES},
                "started": {"pipelineName": ENRICHMENT_JOB, "statuses": STARTED_STATUSES},
                "limit": MAX_RUNS_READ,
            },
        )
        sensor = data["sensorOrError"]
        sensor_running = (
            sensor.get("__typename") == "Sensor"
            and (sensor.get("sensorState") or {}).get("status") == "RUNNING"
        )
        daemon_alive = bool(data["instance"]["daemonHealth"]["sensor"]["healthy"])
        queued = _runs_results(data["queued"])
        started = _runs_results(data["started"])
        return {
            "sensor_running": sensor_running,
            "daemon_alive": daemon_alive,
            "queued_runs": len(queued),
            "inflight_ids": len(_enrichment_ids(started)),
            "queued_ids": len(_enrichment_ids(queued)),
        }


def _runs_results(result: dict[str, Any]) -> list[dict[str, Any]]:
    if result.get("__typename") != "Runs":
        raise LaunchError(500, f"Dagster could not list runs: {_short(result.get('message'))}")
    return result["results"]


def _enrichment_ids(runs: list[dict[str, Any]]) -> set[str]:
    """The memory ids enrichment runs were asked to enrich (from their run config)."""
    ids: set[str] = set()
    for node in runs:
        ops = (node.get("runConfig") or {}).get("ops") or {}
        config = (ops.get(ENRICHMENT_CONFIG_OP) or {}).get("config") or {}
        ids.update(i for i in config.get("ids") or [] if isinstance(i, str))
    return ids
