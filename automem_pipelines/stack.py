"""The whole local stack on one machine: embedded FalkorDB, dagster-webserver, dagster-daemon
and the admin API (`automem-api`, which talks to the webserver over GraphQL).

`automem-pipelines stack` starts them in the foreground and stops them all cleanly on
Ctrl-C / SIGTERM (webserver and daemon exit on SIGINT; `dagster dev` is avoided because it
hangs on shutdown). Tests use `running_stack()` for end-to-end runs over GraphQL.

The webserver's GraphQL endpoint has no authentication: whoever reaches it can launch and
terminate runs, past both API tokens. So it binds to loopback, and another address is refused
unless explicitly allowed (`--allow-remote-webserver`, `AUTOMEM_ALLOW_REMOTE_WEBSERVER=true`);
the README shows how to put it behind an authenticating proxy instead. The API's tokens are
not passed to the webserver and daemon, which never need them.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .constants import CODE_LOCATION_NAME
from .instance import create_storages, ensure_dagster_home
from .settings import Settings
from .stores import falkordb_server

WORKSPACE_YAML = f"""\
load_from:
  - python_module:
      module_name: automem_pipelines.definitions
      location_name: {CODE_LOCATION_NAME}
"""


STACK_LOG_DIR = "stack-logs"  # under DAGSTER_HOME unless start_stack is given another
ALLOW_REMOTE_WEBSERVER_ENV = "AUTOMEM_ALLOW_REMOTE_WEBSERVER"
# Only the admin API reads these; Dagster's processes (and so its runs) never get them.
API_ONLY_ENV = ("AUTOMEM_API_TOKEN", "ADMIN_API_TOKEN")


class UnsafeBindError(ValueError):
    """The webserver was asked to listen beyond loopback without being told that is intended."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost (what only this machine can reach)."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def allow_remote_from_env(env: Mapping[str, str] | None = None) -> bool:
    value = (os.environ if env is None else env).get(ALLOW_REMOTE_WEBSERVER_ENV, "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def check_webserver_bind(host: str, allow_remote: bool = False) -> None:
    if is_loopback(host) or allow_remote:
        return
    raise UnsafeBindError(
        f"refusing to bind the Dagster webserver to {host!r}: its GraphQL endpoint has no "
        "authentication, so anyone who can reach it could launch or terminate runs past the "
        "API tokens. Keep it on 127.0.0.1 (the default) and put an authenticating proxy in "
        "front of it (README, 'The Dagster UI'), or pass --allow-remote-webserver "
        f"({ALLOW_REMOTE_WEBSERVER_ENV}=true) if every client of that network is trusted."
    )


@dataclass
class Stack:
    host: str
    port: int
    dagster_home: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    log_dir: Path | None = None  # each component's output: <log_dir>/<name>.log

    def __post_init__(self) -> None:
        if self.log_dir is None:
            self.log_dir = self.dagster_home / STACK_LOG_DIR

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def add(self, name: str, proc: subprocess.Popen) -> None:
        self.processes[name] = proc

    def stop(self, timeout: float = 20.0) -> None:
        """SIGINT every process group (newest first), then SIGKILL what is left after timeout.

        Run workers are in the daemon's process group (Dagster's spawned ones in the
        webserver's, with its code server) and finish their current write window after the
        daemon has exited: the stop waits for the whole groups, so nothing stops the stores
        under a worker that is still writing."""
        for proc in reversed(list(self.processes.values())):
            if proc.poll() is None:
                _signal_group(proc, signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.wait(remaining)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(5)
        for proc in self.processes.values():
            while _group_alive(proc) and time.monotonic() < deadline:
                time.sleep(0.05)
            if _group_alive(proc):
                _signal_group(proc, signal.SIGKILL)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def _group_alive(proc: subprocess.Popen) -> bool:
    """Whether any process is left in the group the process led (its pid, which is not reused
    while the group has members)."""
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _bin(name: str) -> str:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


_LOCATION_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_for_code_location(url: str, name: str, timeout: float) -> None:
    """The webserver answers before its code server has loaded the definitions; runs can be
    submitted only once the location is LOADED (a load error is raised at once)."""
    deadline = time.monotonic() + timeout
    body = json.dumps({"query": _LOCATION_QUERY}).encode()
    while time.monotonic() < deadline:
        request = urllib.request.Request(
            f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                data = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            time.sleep(0.5)
            continue
        entries = (data.get("data") or {}).get("workspaceOrError", {}).get("locationEntries", [])
        for entry in entries:
            if entry["name"] != name or entry["loadStatus"] != "LOADED":
                continue
            loaded = entry.get("locationOrLoadError") or {}
            if loaded.get("__typename") == "PythonError":
                raise RuntimeError(f"code location {name} failed to load: {loaded.get('message')}")
            return
        time.sleep(0.5)
    raise TimeoutError(f"code location {name} did not load within {timeout:.0f}s")


def start_stack(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 3000,
    env: Mapping[str, str] | None = None,
    log_dir: Path | None = None,
    timeout: float = 120.0,
    extra_locations: str = "",
    allow_remote_webserver: bool = False,
) -> Stack:
    """Start FalkorDB (if embedded), the webserver and the daemon; wait until they answer.

    extra_locations: more `load_from` entries (YAML list items), e.g. a benchmark fixture.
    A non-loopback `host` raises UnsafeBindError unless allow_remote_webserver."""
    check_webserver_bind(host, allow_remote_webserver)
    if settings.falkordb.embedded:
        falkordb_server.ensure_running(
            settings.data_dir, timeout=settings.falkordb.start_timeout_seconds
        )
    home = ensure_dagster_home(settings)
    create_storages(home)
    workspace = home / "workspace.yaml"
    workspace.write_text(WORKSPACE_YAML + extra_locations)
    child_env = {
        k: v for k, v in (os.environ if env is None else env).items() if k not in API_ONLY_ENV
    }
    child_env["DAGSTER_HOME"] = str(home)
    stack = Stack(host, port, home, log_dir=log_dir)
    log_dir = stack.log_dir
    log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(name: str, args: list[str]) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(
            args,
            env=child_env,
            cwd=str(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stack.add(name, proc)
        return proc

    try:
        web = spawn(
            "webserver",
            [_bin("dagster-webserver"), "-h", host, "-p", str(port), "-w", str(workspace)],
        )
        spawn("daemon", [_bin("dagster-daemon"), "run", "-w", str(workspace)])
        wait_for_http(f"{stack.url}/server_info", timeout, web)
        wait_for_code_location(stack.url, CODE_LOCATION_NAME, timeout)
    except BaseException:
        stack.stop()
        raise
    return stack


def start_api(
    stack: Stack,
    host: str = "127.0.0.1",
    port: int = 8001,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
    name: str = "api",
) -> subprocess.Popen:
    """Start `automem-api` against the stack's webserver; it is stopped with the stack."""
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    log = open(stack.log_dir / f"{name}.log", "ab")
    args = [_bin("automem-api"), "--host", host, "--port", str(port), "--dagster-url", stack.url]
    proc = subprocess.Popen(
        args,
        env=dict(os.environ if env is None else env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    stack.add(name, proc)
    try:
        wait_for_http(f"http://{host}:{port}/health", timeout, proc)
    except BaseException:
        stack.stop()
        raise
    return proc


@contextmanager
def running_stack(settings: Settings, **kwargs) -> Iterator[Stack]:
    stack = start_stack(settings, **kwargs)
    try:
        yield stack
    finally:
        stack.stop()


def banner(settings: Settings, stack: Stack, api: tuple[str, int] | None) -> list[str]:
    """What the stack prints once everything answers: where to point a browser, where its data
    and instance live, and where each component's log goes."""
    logs = ", ".join(
        f"{name}.log" for name in stack.processes if (stack.log_dir / f"{name}.log").exists()
    )
    lines = [
        "automem-pipelines stack is up",
        f"  Dagster UI:   {stack.url}",
        f"  Admin API:    http://{api[0]}:{api[1]}  (OpenAPI docs at /docs)"
        if api is not None
        else "  Admin API:    not started (--no-api)",
        f"  Data dir:     {settings.data_dir}  (AUTOMEM_DATA_DIR)",
        f"  DAGSTER_HOME: {stack.dagster_home}  (dagster.yaml, run history)",
        f"  Logs:         {stack.log_dir}/  ({logs}; run workers write to daemon.log)",
    ]
    if settings.falkordb.embedded:
        log = falkordb_server.paths_for(settings.data_dir).logfile
        lines.append(f"  FalkorDB log: {log}  (embedded server)")
    else:
        lines.append(
            f"  FalkorDB:     {settings.falkordb.host}:{settings.falkordb.port} (external)"
        )
    lines.append("Ctrl-C stops everything")
    return lines


def serve_forever(
    settings: Settings,
    host: str,
    port: int,
    extra: list[tuple[str, list[str]]] = (),
    api: tuple[str, int] | None = None,
    allow_remote_webserver: bool = False,
) -> None:
    """Foreground: start everything, print where it is, stop it all on SIGINT/SIGTERM
    (also when they arrive while it is still starting).

    api: (host, port) for the admin API, or None to leave it out."""
    check_webserver_bind(host, allow_remote_webserver)  # before anything starts
    stop = {"now": False}

    def handler(signum, frame):  # noqa: ARG001
        stop["now"] = True

    stack: Stack | None = None
    try:
        stack = start_stack(
            settings, host=host, port=port, allow_remote_webserver=allow_remote_webserver
        )
        if api is not None:
            start_api(stack, *api)
        for name, args in extra:
            stack.add(name, subprocess.Popen(args, start_new_session=True))
        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)
        print("\n".join(banner(settings, stack, api)), flush=True)
        if not is_loopback(host):
            print(
                f"WARNING: the Dagster webserver listens on {host} with no authentication: "
                "anyone who reaches it can launch and terminate runs",
                file=sys.stderr,
            )
        while not stop["now"]:
            for name, proc in stack.processes.items():
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stop["now"] = True
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: stop what has started, below
    finally:
        if stack is not None:
            stack.stop()
        if settings.falkordb.embedded:
            falkordb_server.stop(settings.data_dir)
        print("stack stopped")
