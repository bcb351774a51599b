"""The embedding-model migration against its targets (issue 14). Prints markdown tables.

  python bench/bench_migrate.py                 # 10,000 memories, plan at 100,000
  python bench/bench_migrate.py --quick         # 2,000 / 20,000, a smoke run

N sample memories embedded by the shipped local model (256-d) are the live collection; the
target is text-embedding-3-large at 1024-d over the OpenAI-wire test server (in this process,
so every request and text is counted), answering each request after --latency seconds.
On the in-memory store (QDRANT_URL=:memory:, where the pipeline's own cost shows) and on the
on-disk local store, in the same run:

1. wall: the migrate job (plan → … → cutover) ÷ a forced re-embed of the same store into an
   empty collection with the same model, size and batch (the reference method's rebuild);
2. readers: a thread querying the live collection (local-model vector, limit 10) for 5 s
   before the migration and all through it: reads answered, empty reads, p50/p99 latency;
3. provider calls ÷ memories and texts ÷ memories, for the clean migration and (on disk) for
   one whose process (`automem-pipelines migrate`) is SIGKILLed halfway through the backfill
   and then run again;
4. plan time: a plan-only migration of --plan-n memories ÷ the backfill's time for as many
   (the forced re-embed's rate at N, scaled linearly: said so in the table).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_definitions, build_resources  # noqa: E402
from automem_pipelines.domain.embeddings import local_provider  # noqa: E402
from automem_pipelines.run_config import migrate_run_config, reembed_run_config  # noqa: E402
from bench._common import (  # noqa: E402
    bench_dir,
    instance_in,
    keep_open,
    load,
    make_settings,
    run_job,
    table,
)
from tests.support.openai_server import OpenAIEmbeddingsServer  # noqa: E402

MODEL = "text-embedding-3-large"
DIM = 1024
REPO = Path(__file__).resolve().parent.parent


class Reader(threading.Thread):
    def __init__(self, client, collection: str, vector):
        super().__init__(daemon=True)
        self.client, self.collection, self.vector = client, collection, vector
        self.stop = threading.Event()
        self.latencies: list[float] = []
        self.failed = self.empty = 0

    def run(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                hits = self.client.query_points(self.collection, query=self.vector, limit=10).points
                self.empty += not hits
            except Exception:  # noqa: BLE001 - counted
                self.failed += 1
            self.latencies.append(time.perf_counter() - started)
            time.sleep(0.005)

    def finish(self) -> Reader:
        self.stop.set()
        self.join(10)
        return self

    def p(self, q: float) -> float:
        return float(np.percentile(self.latencies, q) * 1000) if self.latencies else 0.0


def counts(server) -> tuple[int, int]:
    return server.request_count, server.text_count


def run_migrate(settings, instance, **config):
    job = build_definitions(settings).get_job_def("migrate_job")
    started = time.perf_counter()
    result = job.execute_in_process(
        run_config=migrate_run_config(**config),
        instance=instance,
        resources=build_resources(settings, from_env=False),
    )
    seconds = time.perf_counter() - started
    stats = {
        s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(result.run_id)
    }
    return seconds, result.output_for_node("cut_over_readers"), stats


def one_store(kind: str, root: Path, instance, server, n: int, batch: int, env: dict) -> dict:
    memory = kind == "memory"
    extra = {"QDRANT_URL": ":memory:"} if memory else {}
    graph_name = f"g_{kind}"

    def settings_for(collection: str, **more):
        variables = {**env, **extra, **more}
        return make_settings(
            root, FALKORDB_GRAPH=graph_name, QDRANT_COLLECTION=collection, **variables
        )

    live = settings_for("live")
    load(live, n)
    if memory:
        keep_open(live)  # an in-memory store lives while it is open
    _, source = run_job(live, instance, reembed_run_config(256, force=True))
    assert source["processed"] == n, source
    target_env = {"EMBEDDING_PROVIDER": "openai", "EMBEDDING_MODEL": MODEL, "VECTOR_SIZE": str(DIM)}
    query = local_provider().embed(["what did we decide about the release"]).vectors[0]
    res = build_resources(live, from_env=False)
    with res["qdrant"].open_store() as vectors:
        before = Reader(vectors.client, "live", query)
        before.start()
        time.sleep(5)
        before.finish()
        # the same reader runs beside the rebuild and beside the migration: like for like
        server.reset()
        server.state.latency = LATENCY
        rebuild = Reader(vectors.client, "live", query)
        rebuild.start()
        baseline, summary = run_job(
            settings_for("rebuild", **target_env), instance, reembed_run_config(batch, force=True)
        )
        rebuild.finish()
        assert summary["processed"] == n, summary
        base_calls = counts(server)
        print(f"[{kind}] forced re-embed into an empty collection: {baseline:.1f}s", flush=True)
        server.reset()
        server.state.latency = LATENCY
        during = Reader(vectors.client, "live", query)
        during.start()
        wall, outcome, stages = run_migrate(
            live, instance, to_provider="openai", to_model=MODEL, to_dim=DIM, batch_size=batch
        )
        during.finish()
    assert outcome["migration"]["verified"]["ok"], outcome
    calls, texts = counts(server)
    print(f"[{kind}] migration: {wall:.1f}s ({calls} requests)", flush=True)
    return {
        "kind": kind,
        "baseline": baseline,
        "base_calls": base_calls,
        "wall": wall,
        "stages": stages,
        "calls": calls,
        "texts": texts,
        "before": before,
        "rebuild": rebuild,
        "during": during,
    }


def killed_and_resumed(root: Path, server, n: int, batch: int, env: dict) -> dict:
    """On disk: the CLI's migration SIGKILLed halfway through the backfill, then run again."""
    settings = make_settings(root, FALKORDB_GRAPH="g_kill", QDRANT_COLLECTION="live_k", **env)
    load(settings, n)
    with instance_in(root / "k") as instance:
        run_job(settings, instance, reembed_run_config(256, force=True))
    variables = {
        **os.environ,
        **{k: v for k, v in env.items()},
        "AUTOMEM_DATA_DIR": str(root),
        "FALKORDB_GRAPH": "g_kill",
        "QDRANT_COLLECTION": "live_k",
        "DAGSTER_HOME": str(root / "dagster_cli"),
    }
    command = [
        sys.executable,
        "-m",
        "automem_pipelines.cli",
        "migrate",
        "--to-provider",
        "openai",
        "--to-model",
        MODEL,
        "--to-dim",
        str(DIM),
        "--batch-size",
        str(batch),
    ]
    server.reset()
    server.state.latency = LATENCY
    halfway = threading.Event()
    server.state.on_request = lambda number: number >= n // batch // 2 and halfway.set()
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, env=variables, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    if not halfway.wait(600):
        proc.kill()
        raise RuntimeError("the migration never reached half of its requests")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    first = counts(server)
    done = subprocess.run(
        command, env=variables, cwd=REPO, capture_output=True, text=True, timeout=1800
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    summary = json.loads(done.stdout)
    texts = Counter(t for r in server.state.requests for t in r.texts)
    return {
        "first": first,
        "total": counts(server),
        "wall": wall,
        "summary": summary,
        "distinct": len(texts),
    }


def plan_at(root: Path, instance, n: int, batch: int, env: dict) -> tuple[float, dict]:
    settings = make_settings(
        root, FALKORDB_GRAPH="g_plan", QDRANT_URL=":memory:", QDRANT_COLLECTION="live_p", **env
    )
    started = time.perf_counter()
    load(settings, n)
    print(f"loaded {n} memories for the plan in {time.perf_counter() - started:.1f}s", flush=True)
    keep_open(settings)
    seconds, plan, _ = run_migrate(
        settings,
        instance,
        to_provider="openai",
        to_model=MODEL,
        to_dim=DIM,
        batch_size=batch,
        plan=True,
    )
    assert plan["status"] == "planned" and plan["memories"] == n, plan
    return seconds, plan


def main() -> None:
    global LATENCY
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--plan-n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--quick", action="store_true", help="n=2000, plan-n=20000")
    args = parser.parse_args()
    if args.quick:
        args.n, args.plan_n = 2_000, 20_000
    n, batch, LATENCY = args.n, args.batch_size, args.latency
    print(
        f"`python bench/bench_migrate.py {' '.join(sys.argv[1:])}` — 2 cores, shared, noisy; "
        f"{n:,} memories, batch {batch}, {LATENCY * 1000:g} ms per request\n",
        flush=True,
    )
    server = OpenAIEmbeddingsServer(default_dim=DIM).start()
    env = {
        "EMBEDDING_PROVIDER": "local",
        "OPENAI_API_KEY": "bench",
        "OPENAI_BASE_URL": server.base_url,
        "REEMBED_MAX_COST_USD": "1000",
    }
    try:
        with bench_dir() as root, instance_in(root) as instance:
            runs = [
                one_store(kind, root, instance, server, n, batch, env)
                for kind in ("memory", "disk")
            ]
            kill = killed_and_resumed(root, server, n, batch, env)
            plan_seconds, plan = plan_at(root, instance, args.plan_n, batch, env)
    finally:
        server.stop()

    rows = []
    for r in runs:
        rows.append(
            [
                r["kind"],
                r["baseline"],
                r["wall"],
                r["wall"] / r["baseline"],
                ", ".join(f"{k.split('_')[0]} {v:.1f}" for k, v in r["stages"].items()),
            ]
        )
    print(
        table(
            f"1. Wall: migration ÷ forced re-embed into an empty collection ({n:,} memories, "
            "target ≤ 1.3)",
            ["store", "re-embed s", "migration s", "ratio", "stages (s)"],
            rows,
        )
    )
    rows = []
    for r in runs:
        b, d = r["before"], r["during"]
        answered = 100.0 * (len(d.latencies) - d.failed - d.empty) / max(1, len(d.latencies))
        rows.append(
            [
                r["kind"],
                len(d.latencies),
                f"{answered:.2f}%",
                d.failed,
                d.empty,
                b.p(99),
                r["rebuild"].p(99),
                d.p(50),
                d.p(99),
                d.p(99) / max(b.p(99), 1e-9),
                d.p(99) / max(r["rebuild"].p(99), 1e-9),
            ]
        )
    print(
        table(
            "2. Readers of the live collection during the migration (target: 100% answered, "
            "p99 ≤ 2× before)",
            [
                "store",
                "reads",
                "answered",
                "failed",
                "empty",
                "p99 idle ms",
                "p99 beside the rebuild ms",
                "p50 during ms",
                "p99 during ms",
                "p99 ÷ idle",
                "p99 ÷ beside the rebuild",
            ],
            rows,
        )
    )
    rows = [
        [f"{r['kind']}: clean", r["calls"], r["calls"] / n, 1 / batch, r["texts"] / n] for r in runs
    ]
    rows.append(
        [
            f"disk: SIGKILL at {kill['first'][0]} requests, then resumed",
            kill["total"][0],
            kill["total"][0] / n,
            1 / batch,
            kill["total"][1] / n,
        ]
    )
    print(
        table(
            "3. Provider calls ÷ memories (target 1 ÷ batch; texts ÷ memories 1.0)",
            ["run", "requests", "requests ÷ memories", "1 ÷ batch", "texts ÷ memories"],
            rows,
        )
    )
    per_memory = runs[0]["baseline"] / n  # the in-memory store's re-embed rate
    backfill = per_memory * args.plan_n
    print(
        table(
            f"4. Plan time for {args.plan_n:,} memories (target ≤ 10% of the backfill)",
            [
                "plan-only run s",
                "tokens",
                "cost_usd",
                f"backfill s (in-memory rate at {n:,}, scaled linearly)",
                "plan ÷ backfill",
            ],
            [[plan_seconds, plan["tokens"], plan["cost_usd"], backfill, plan_seconds / backfill]],
        )
    )


LATENCY = 0.15

if __name__ == "__main__":
    main()
