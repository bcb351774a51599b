"""Secrets never reach a log, on a real stack: embedded FalkorDB, dagster-webserver,
dagster-daemon and `automem-api` as their own processes over one data dir.

The module fixture sends every probe of `tests.support.leaks` (tokens in query strings under
every encoding and separator, in each header, in the path, in JSON bodies valid and not, in
over-long requests) byte for byte, waits for the runs the authenticated ones started, stops the
stack, and then every file under the data dir (component logs, API access and audit logs, the
FalkorDB log and data, the Dagster storage's sqlite files and compute logs, the Qdrant store) is
searched byte for byte for each form of each token. Positive controls prove the search sees
what it searches: each file kind is present and holds what it should (an access line per
request, an audit line per admin call, the runs' ids and request ids in the run storage).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import pytest

from automem_pipelines import postgres_server
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.instance import POSTGRES_URL_ENV
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack, start_api
from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.graph import GraphConfig, connect
from tests.support.dagster_stack import free_port
from tests.support.drills import stack_env
from tests.support.leaks import Probe, files_under, leaks_in, needles, probes

pytestmark = pytest.mark.slow

API_TOKEN = f"apitok-{secrets.token_hex(16)}"
ADMIN_TOKEN = f"admtok-{secrets.token_hex(16)}"
SECRETS = needles(API_TOKEN, ADMIN_TOKEN)
RUNS_LIMIT_SECONDS = 240.0  # a bound on waiting for the runs, not an assertion about speed
ACTIVE = {
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
}


@dataclass
class Answer:
    probe: Probe
    status: int | None  # None: the connection was closed without an answer
    request_id: str | None
    body: bytes


@dataclass
class Scenario:
    root: Path
    dagster_home: Path
    memory_ids: list[str]
    answers: list[Answer] = field(default_factory=list)
    bad_id_answers: list[tuple[str, int, dict]] = field(default_factory=list)
    runs_before_bad_ids: int = 0
    runs_after_bad_ids: int = 0
    runs: list[dict] = field(default_factory=list)  # run_id, status, tags, run_config
    webserver_port: int = 0
    listening: dict[int, set[str]] = field(default_factory=dict)
    dagster_environ: dict[int, bytes] = field(default_factory=dict)


def send(port: int, probe: Probe) -> Answer:
    """One request, the target exactly as given (http.client does not re-encode it)."""
    method, target, headers, body = probe.method, probe.target, probe.headers, probe.body
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)
        if body or method in ("POST", "PUT"):
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        return Answer(probe, response.status, response.getheader("x-request-id"), response.read())
    except (ConnectionError, http.client.HTTPException):
        return Answer(probe, None, None, b"")
    finally:
        conn.close()


def _listeners(port: int) -> set[str]:
    """Local addresses in LISTEN state for this TCP port (from /proc/net/tcp and tcp6)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            address, hex_port = parts[1].rsplit(":", 1)
            if int(hex_port, 16) == port and parts[3] == "0A":
                found.add(address)
    return found


def _group_environ(pgid: int) -> dict[int, bytes]:
    """The environment of every process in a process group (each stack child leads its own)."""
    out: dict[int, bytes] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            stat = (proc / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                out[int(proc.name)] = (proc / "environ").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
    return out


def _all_runs(home: Path) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(str(home)) as instance:
        return list(instance.get_runs())


@pytest.fixture(scope="module")
def scenario() -> Iterator[Scenario]:
    root = Path(tempfile.mkdtemp(prefix="amk-"))
    env = stack_env(
        root,
        AUTOMEM_API_TOKEN=API_TOKEN,
        ADMIN_API_TOKEN=ADMIN_TOKEN,
        AUTOMEM_API_ADMIN_RATE_LIMIT="0",
        AUTOMEM_API_STATUS_CACHE_SECONDS="0",
    )
    settings = Settings.from_env(env)
    saved_home = os.environ.pop("DAGSTER_HOME", None)
    try:
        falkordb_server.ensure_running(root)
        memories = list(sample_memories(5))
        graph = connect(GraphConfig.from_settings(settings))
        try:
            graph.ensure_indexes()
            graph.upsert_memories(node_props_for_write(m) for m in memories)
        finally:
            graph.close()
        ids = [m["id"] for m in memories]
        web_port, api_port = free_port(), free_port()
        with running_stack(settings, port=web_port, env=env) as stack:
            start_api(stack, port=api_port, env=env)
            found = Scenario(root, stack.dagster_home, ids, webserver_port=web_port)
            found.listening = {web_port: _listeners(web_port), api_port: _listeners(api_port)}
            for name in ("webserver", "daemon"):
                found.dagster_environ.update(_group_environ(stack.processes[name].pid))

            found.answers = [send(api_port, p) for p in probes(API_TOKEN, ADMIN_TOKEN, ids[0])]

            # Ids with a NUL byte, in the three accepted forms: 400 naming ids, and no run.
            admin = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
            found.runs_before_bad_ids = len(_all_runs(stack.dagster_home))
            bad = [ids[1], f"{ids[2]}\x00x"]
            for form, target, body in [
                ("body list", "/enrichment/reprocess", json.dumps({"ids": bad}).encode()),
                (
                    "body string",
                    "/enrichment/reprocess",
                    json.dumps({"ids": ",".join(bad)}).encode(),
                ),
                ("query", "/enrichment/reprocess?ids=" + quote(",".join(bad), safe=","), b""),
            ]:
                answer = send(api_port, Probe(form, "POST", target, admin, body))
                found.bad_id_answers.append((form, answer.status, json.loads(answer.body)))
            found.runs_after_bad_ids = len(_all_runs(stack.dagster_home))

            deadline = time.monotonic() + RUNS_LIMIT_SECONDS
            while time.monotonic() < deadline:
                runs = _all_runs(stack.dagster_home)
                if not any(r.status in ACTIVE for r in runs):
                    break
                time.sleep(0.5)
            found.runs = [
                {
                    "run_id": r.run_id,
                    "status": r.status.value,
                    "tags": dict(r.tags),
                    "run_config": r.run_config,
                }
                for r in runs
            ]
        falkordb_server.stop(root)  # its log is complete once it has shut down
        yield found
    finally:
        if saved_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved_home
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def answered(s: Scenario) -> list[Answer]:
    return [a for a in s.answers if a.request_id is not None]


def test_the_probes_reached_the_api_and_kept_automem_auth(scenario: Scenario):
    assert len(answered(scenario)) == len(scenario.answers)  # every probe got our answer
    for answer in scenario.answers:
        if answer.probe.expect == "through":
            assert answer.status not in (401, 403), (answer.probe.name, answer.body[:300])
        elif answer.probe.expect == "rejected":
            assert answer.status == 401, (answer.probe.name, answer.body[:300])
        assert not leaks_in(answer.body, SECRETS), answer.probe.name  # nor in what we answer
        assert not leaks_in(answer.request_id.encode(), SECRETS)
    launched = [a for a in scenario.answers if a.status == 202]
    assert len(launched) >= 2  # the enrichment run and at least one sync run


def test_ids_with_a_nul_byte_are_refused_before_any_run(scenario: Scenario):
    assert [(form, status) for form, status, _ in scenario.bad_id_answers] == [
        ("body list", 400),
        ("body string", 400),
        ("query", 400),
    ]
    for _, _, body in scenario.bad_id_answers:
        assert body["field"] == "ids"
        assert body["message"].startswith("ids[1] contains a control character (U+0000")
    assert scenario.runs_after_bad_ids == scenario.runs_before_bad_ids > 0


def test_the_runs_finished_and_their_tags_and_config_hold_no_token(scenario: Scenario):
    assert len(scenario.runs) >= 2
    assert all(r["status"] == "SUCCESS" for r in scenario.runs), scenario.runs
    enrichment = [
        r
        for r in scenario.runs
        if r["tags"].get("automem/trigger") == "api"
        and "select_memories" in json.dumps(r["run_config"])
    ]
    assert enrichment and scenario.memory_ids[0] in json.dumps(enrichment[0]["run_config"])
    for run in scenario.runs:
        assert not leaks_in(json.dumps(run).encode(), SECRETS), run


def test_webserver_and_api_listen_on_loopback_only(scenario: Scenario):
    loopback_v4 = "0100007F"  # 127.0.0.1 as /proc/net/tcp writes it
    for port, addresses in scenario.listening.items():
        assert addresses == {loopback_v4}, (port, addresses)
    assert scenario.webserver_port in scenario.listening


def test_dagster_processes_never_get_the_api_tokens(scenario: Scenario):
    assert len(scenario.dagster_environ) >= 2  # webserver, daemon and their children
    for pid, environ in scenario.dagster_environ.items():
        assert b"DAGSTER_HOME=" in environ, pid  # the environment was really read
        assert b"AUTOMEM_API_TOKEN" not in environ and not leaks_in(environ, SECRETS), pid


def test_no_file_under_the_data_dir_holds_a_token(scenario: Scenario):
    files = files_under(scenario.root)
    leaked = {}
    for path in files:
        found = leaks_in(path.read_bytes(), SECRETS)
        if found:
            leaked[str(path.relative_to(scenario.root))] = [f.decode()[:12] for f in found]
    assert leaked == {}

    # What was searched: every kind of file the brief names, each holding what it should.
    names = {str(p.relative_to(scenario.root)) for p in files}
    home = scenario.dagster_home.relative_to(scenario.root)
    expected = {f"{home}/stack-logs/{n}.log" for n in ("api", "webserver", "daemon")}
    expected |= {"api-audit.jsonl", "falkordb/falkordb.log"}
    postgres_url = os.environ.get(POSTGRES_URL_ENV)
    if postgres_url is None:  # runs and events in sqlite under DAGSTER_HOME
        expected.add(f"{home}/history/runs.db")
        runs_db = (scenario.dagster_home / "history" / "runs.db").read_bytes()
    else:  # runs and events in PostgreSQL: its whole database, dumped, holds no token either
        runs_db = subprocess.run(
            [str(postgres_server.find_bin_dir() / "pg_dump"), "--dbname", postgres_url],
            capture_output=True,
            check=True,
        ).stdout
        assert b"CREATE TABLE public.event_logs" in runs_db
        assert leaks_in(runs_db, SECRETS) == []
    assert expected <= names, sorted(names)
    assert any(n.startswith(f"{home}/storage/") for n in names)  # event logs, compute logs

    api_log = (scenario.dagster_home / "stack-logs" / "api.log").read_text()
    access_lines = [line for line in api_log.splitlines() if "request_id=" in line]
    for answer in answered(scenario):
        assert f"request_id={answer.request_id}" in api_log, answer.probe.name
    assert len(access_lines) >= len(scenario.answers)
    audit = (scenario.root / "api-audit.jsonl").read_text().splitlines()
    admin_calls = [
        a
        for a in scenario.answers
        if a.probe.target.split("?")[0].split(";")[0]
        in ("/admin/reembed", "/admin/sync", "/enrichment/reprocess")
    ]
    assert len(audit) == len(admin_calls) + len(scenario.bad_id_answers)
    assert (scenario.root / "falkordb" / "falkordb.log").stat().st_size > 0

    for run in scenario.runs:
        assert run["run_id"].encode() in runs_db
        assert run["tags"]["automem/request_id"].encode() in runs_db
    assert scenario.memory_ids[0].encode() in runs_db  # run config is searched too
