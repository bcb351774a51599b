"""Shared set-up for the benchmarks: a throw-away data dir with its own embedded FalkorDB."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg

from automem_pipelines import postgres_server
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.instance import POSTGRES_URL_ENV, postgres_storage_yaml
from automem_pipelines.settings import Settings
from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.vectors import VectorStore

_kept = ExitStack()  # stores kept open until the bench dir goes


@contextmanager
def bench_dir():
    root = Path(tempfile.mkdtemp(prefix="amb-"))
    try:
        yield root
    finally:
        _kept.close()
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def keep_open(settings_or_resources: Settings | dict) -> VectorStore:
    """The vector store, open until the bench dir goes (a run meanwhile shares its client; an
    in-memory store lives while it is open)."""
    res = settings_or_resources
    if isinstance(res, Settings):
        res = build_resources(res, from_env=False)
    return _kept.enter_context(res["qdrant"].open_store())


STORAGES = ("sqlite", "postgres")


@contextmanager
def instance_in(root: Path, storage: str = "sqlite") -> Iterator[dg.DagsterInstance]:
    """A persistent instance under the bench dir, like a real DAGSTER_HOME: sqlite, or
    PostgreSQL as DAGSTER_POSTGRES_URL configures it (a server the project starts)."""
    home = root / "dagster"
    home.mkdir(parents=True, exist_ok=True)
    if storage == "sqlite":
        with dg.DagsterInstance.local_temp(str(home)) as instance:
            yield instance
        return
    if storage != "postgres":
        raise ValueError(f"storage {storage!r}: expected one of {', '.join(STORAGES)}")
    with postgres_url():
        (home / "dagster.yaml").write_text(postgres_storage_yaml())
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield instance


@contextmanager
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server the project starts, its URL exported as DAGSTER_POSTGRES_URL for
    the block (dagster.yaml names the variable)."""
    saved = os.environ.get(POSTGRES_URL_ENV)
    try:
        with postgres_server.temporary_server("amb-pg-") as server:
            url = postgres_server.url_for(server)
            os.environ[POSTGRES_URL_ENV] = url
            yield url
    finally:
        if saved is None:
            os.environ.pop(POSTGRES_URL_ENV, None)
        else:
            os.environ[POSTGRES_URL_ENV] = saved


def make_settings(root: Path, **env: str) -> Settings:
    base = {"AUTOMEM_DATA_DIR": str(root)}
    base.update(env)
    return Settings.from_env(base)


def load(settings: Settings, count: int, seed: int = 7) -> list[dict]:
    rows = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
        graph.ensure_indexes()
        graph.upsert_memories(rows, batch=5000)
    return rows


def run_job(
    settings: Settings,
    instance: dg.DagsterInstance,
    run_config: dict,
    resources: dict | None = None,
):
    job = build_definitions(settings).get_job_def("reembed_job")
    started = time.perf_counter()
    result = job.execute_in_process(
        run_config=run_config,
        instance=instance,
        resources=resources or build_resources(settings, from_env=False),
    )
    return time.perf_counter() - started, result.output_for_node("summarize_reembed")


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def table(title: str, header: list[str], rows: list[list[object]]) -> str:
    cells = [header] + [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [
        f"\n{title}",
        "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths)) + " |",
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
    ]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells[1:]]
    return "\n".join(lines)


class ProviderProcess:
    """The OpenAI-wire test server in a process of its own (tests/support/openai_server.py run
    standalone), so its JSON work does not share the benchmark's interpreter lock; latency is
    set between rounds over its control route."""

    def __init__(self, default_dim: int = 256):
        import subprocess
        import sys

        root = Path(__file__).resolve().parent.parent
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.openai_server",
                "--default-dim",
                str(default_dim),
            ],
            cwd=root,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base_url = self.proc.stdout.readline().strip()
        if not self.base_url.startswith("http"):
            self.stop()
            raise RuntimeError("the provider process did not start")

    def set_latency(self, seconds: float) -> None:
        import requests

        from tests.support.openai_server import LATENCY_PATH

        url = self.base_url.rsplit("/v1", 1)[0] + LATENCY_PATH
        requests.post(url, json={"seconds": seconds}, timeout=10).raise_for_status()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
