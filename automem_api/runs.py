"""The run service: launching a job as a Dagster run, one at a time where the job needs it,
waiting for it (bounded), and reading its outcome. Every call to Dagster goes through the
gateway, in a threadpool (the gateway is synchronous)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from automem_pipelines.constants import (
    BUDGET_REFUSED,
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    MIGRATE_JOB,
    OPERATOR_PRIORITY,
    REEMBED_JOB,
    TAG_PRIORITY,
    TAG_REQUEST_ID,
    TAG_TRIGGER,
)
from automem_pipelines.domain.progress import RunProgress

from .config import ApiConfig
from .errors import ApiError
from .gateway import DagsterGateway, LaunchError, RunInfo, RunOutcome
from .middleware import audit_of, request_id_of
from .redaction import short_id

TRIGGER = "api"
JOB_LABELS = {
    REEMBED_JOB: "re-embed",
    DRIFT_SYNC_JOB: "drift-sync",
    ENRICHMENT_JOB: "enrichment",
    MIGRATE_JOB: "migration",
}
EXCLUSIVE_JOBS = (REEMBED_JOB, DRIFT_SYNC_JOB, MIGRATE_JOB)
FINISHED = ("SUCCESS", "FAILURE", "CANCELED")


class OutcomeCache:
    """Finished runs never change: keep their outcomes (bounded)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[str, RunOutcome] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunOutcome | None:
        with self._lock:
            return self._items.get(run_id)

    def put(self, run_id: str, outcome: RunOutcome) -> None:
        with self._lock:
            self._items[run_id] = outcome
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class ProgressCache:
    """Per running run: how far its event log has been read (the cursor) and the progress
    folded from it, so a poll of `/admin/runs/{id}` reads only the events since the last one
    (bounded: the least recently polled runs are dropped, and read again from the start)."""

    MAX_PAGES = 20  # per poll; the rest is read by the next poll

    def __init__(self, size: int = 64):
        self.size = size
        self._items: OrderedDict[str, tuple[threading.Lock, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def entry(self, run_id: str) -> tuple[threading.Lock, dict[str, Any]]:
        with self._lock:
            found = self._items.get(run_id)
            if found is None:
                found = self._items[run_id] = (
                    threading.Lock(),
                    {"cursor": None, "progress": RunProgress()},
                )
            self._items.move_to_end(run_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return found

    def drop(self, run_id: str) -> None:
        with self._lock:
            self._items.pop(run_id, None)

    def read(self, gateway: DagsterGateway, run_id: str) -> dict[str, Any] | None:
        """The run-level progress after reading the run's new events (GraphQL logsForRun)."""
        lock, state = self.entry(run_id)
        with lock:
            for _ in range(self.MAX_PAGES):
                events, state["cursor"], more = gateway.progress_page(run_id, state["cursor"])
                for step_key, message, _ts in events:
                    state["progress"].feed(step_key, message)
                if not more:
                    break
            return state["progress"].snapshot()


def tags_for(request: Request) -> dict[str, str]:
    # the jobs carry OPERATOR_PRIORITY already; said here too, since the API's runs are
    # operator-started whatever the jobs' tags become (constants.TAG_PRIORITY)
    return {
        TAG_TRIGGER: TRIGGER,
        TAG_REQUEST_ID: request_id_of(request),
        TAG_PRIORITY: OPERATOR_PRIORITY,
    }


class RunService:
    def __init__(self, config: ApiConfig, gateway: DagsterGateway):
        self.config = config
        self.gateway = gateway
        self.outcomes = OutcomeCache()
        self.progress_cache = ProgressCache()
        self._locks = {job: asyncio.Lock() for job in EXCLUSIVE_JOBS}

    async def submit(self, request: Request, job: str, run_config: dict[str, Any]) -> str:
        if job in self._locks:
            return await self._submit_exclusive(request, job, run_config)
        return await self._submit(request, job, run_config)

    async def _submit(self, request: Request, job: str, run_config: dict[str, Any]) -> str:
        run_id = await run_in_threadpool(self.gateway.submit, job, run_config, tags_for(request))
        audit_of(request)["run_id"] = run_id
        return run_id

    async def _submit_exclusive(
        self, request: Request, job: str, run_config: dict[str, Any]
    ) -> str:
        """409 with the active run's id if the job is queued or running (whoever started it).
        The check and the submit happen under the job's lock."""
        async with self._locks[job]:
            active = await run_in_threadpool(self.gateway.active_runs, job)
            if active:
                running = next(
                    (r for r in active if r.status in ("STARTING", "STARTED")), active[-1]
                )
                audit_of(request).update(run_id=running.run_id, outcome="conflict")
                raise ApiError(
                    409,
                    f"A {JOB_LABELS[job]} run is already {running.status.lower()}: "
                    f"{short_id(running.run_id)}",
                    extra={"run_id": running.run_id, "run_status": running.status.lower()},
                )
            return await self._submit(request, job, run_config)

    async def outcome(self, run: RunInfo) -> RunOutcome:
        cached = self.outcomes.get(run.run_id)
        if cached is None:
            cached = await run_in_threadpool(self.gateway.outcome, run.run_id, run.job)
            if run.finished:
                self.outcomes.put(run.run_id, cached)
        return cached

    async def progress(self, run: RunInfo) -> dict[str, Any] | None:
        """{phase, done, total, rate_per_second, eta_seconds} of a run that is going; None
        before its first progress event and once it has finished."""
        if run.finished:
            self.progress_cache.drop(run.run_id)
            return None
        try:
            return await run_in_threadpool(self.progress_cache.read, self.gateway, run.run_id)
        except LaunchError:  # Dagster could not read the run's log: the status still answers
            return None

    def finished_outcome(self, run: RunInfo) -> RunOutcome:
        """As `outcome`, from a worker thread (the health check's)."""
        cached = self.outcomes.get(run.run_id)
        if cached is None:
            cached = self.gateway.outcome(run.run_id, run.job)
            self.outcomes.put(run.run_id, cached)
        return cached

    async def wait_status(self, run_id: str) -> str:
        """The run's status once finished, or its last status when the wait bound passes."""
        deadline = time.monotonic() + self.config.wait_timeout_seconds
        status = "QUEUED"
        while True:
            status = await run_in_threadpool(self.gateway.run_status, run_id) or status
            if status in FINISHED or time.monotonic() >= deadline:
                return status
            await asyncio.sleep(self.config.wait_poll_seconds)

    async def wait_answer(self, request: Request, job: str, run_id: str) -> JSONResponse:
        """`"wait": true`: 200 with the summary, 202 if still running, 500 if it failed."""
        status = await self.wait_status(run_id)
        request_id = request_id_of(request)
        label = JOB_LABELS[job]
        audit = audit_of(request)
        if status not in FINISHED:
            audit["outcome"] = f"still {status.lower()} after wait"
            return JSONResponse(
                {
                    "status": status.lower(),
                    "run_id": run_id,
                    "request_id": request_id,
                    "job": job,
                    "message": f"the {label} run is still {status.lower()} after "
                    f"{self.config.wait_timeout_seconds:g}s; poll /admin/runs/{run_id}",
                },
                status_code=202,
            )
        outcome = await self.outcome(RunInfo(run_id, job, status))
        summary = outcome.summary
        if status == "SUCCESS" and summary is not None:
            audit["outcome"] = f"success: {summary.get('status')}"
            return JSONResponse({**summary, "run_id": run_id, "request_id": request_id})
        if status == "FAILURE" and (summary or {}).get("run_failed"):
            # Failed by its failure threshold after finishing its work: AutoMem's fields as
            # AutoMem answers provider failures (200, with failed counts and ids), plus the
            # run's status and why it failed.
            audit["outcome"] = "run failure: failure threshold reached"
            return JSONResponse(
                {**summary, "run_id": run_id, "request_id": request_id, "run_status": "failure"}
            )
        refusal = next((e for e in outcome.errors if BUDGET_REFUSED in e), None)
        if status == "FAILURE" and refusal is not None:  # the budget gate: nothing was paid
            audit["outcome"] = "refused: over budget"
            raise ApiError(
                422,
                f"the {label} run {short_id(run_id)} was {refusal[refusal.index(BUDGET_REFUSED) :]}",
                extra={"run_id": run_id, "run_status": "failure"},
            )
        if status == "SUCCESS":
            message = (
                f"the {label} run {short_id(run_id)} succeeded but its summary could not be read"
            )
        else:
            reason = outcome.errors[-1] if outcome.errors else "no error message recorded"
            message = f"the {label} run {short_id(run_id)} ended {status.lower()}: {reason}"
        audit["outcome"] = f"run {status.lower()}"
        raise ApiError(
            500,
            message,
            extra={"run_id": run_id, "run_status": status.lower(), "errors": outcome.errors[-5:]},
        )


def queued(request: Request, job: str, run_id: str, extra: dict[str, Any]) -> JSONResponse:
    audit_of(request).setdefault("outcome", "queued")
    body = {"status": "queued", "run_id": run_id, "request_id": request_id_of(request), "job": job}
    return JSONResponse({**body, **extra}, status_code=202)
