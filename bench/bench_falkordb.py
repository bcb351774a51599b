"""Embedded FalkorDB persistence: files on disk and restart time after a day of churn.

Loads N sample memories (default 100,000) with the project's loader (``GraphStore.upsert_memories``)
into an embedded FalkorDB of its own, then runs P full enrichment passes (default 20) through
the enrichment job's own write path: per batch of 500 memories (the job's batch size) one
``PRECEDED_BY_QUERY`` (each memory to the two before it in time), one ``SIMILAR_TO_QUERY``
(one stable neighbour per memory, both directions) and one ``UPDATE_QUERY`` whose rows come
from ``enrichment.batch.node_update`` (metadata with the enrichment section, tags + entity tags,
tag_prefixes, summary, enriched_at; processed = true), all through ``enrichment.writes.write_rows``.
Entities come from the rule-based extractor (no spaCy), computed once. A re-embed pass does
not write the graph, so it adds nothing here.

Then it reports the persistence files on disk (append-only dir + dump.rdb) against the size of
one fresh snapshot of the same graph (``SAVE``), and the restart-to-ready time: stop, start,
first successful GRAPH query. Configurations:

  new           what the project runs (falkordb_server.PERSISTENCE / MODULE_OPTIONS): writes
                logged as effects, AOF rewrite at 50% growth from 8 MB, no dump.rdb; restart
                through stop() + ensure_running(), and once more after kill -9
  rewrite-only  the same rewrite policy, but writes logged as Cypher text (FalkorDB default)
  old           before: Redis defaults (rewrite at 100% growth from 64 MB, RDB save points),
                writes logged as Cypher text

Restarts are measured right after the passes, after a rewrite plus one batch job of 10,000
enriched memories (a known log tail), and (new only) after kill -9. A last situation is the
one of issue 10: a young store (20,000 memories loaded and enriched once) whose log was never
rewritten, so it still holds the CREATE INDEX: replayed Cypher text after it runs without the
index (FalkorDB builds it when loading ends) and every MATCH by id scans all nodes. Slow
restarts are cut at ``--restart-cap`` seconds and reported with how much of the files the
server had read by then.

    .venv/bin/python bench/bench_falkordb.py                          # 100,000 memories, 20 passes, new + old
    .venv/bin/python bench/bench_falkordb.py --configs new,rewrite-only,old
    .venv/bin/python bench/bench_falkordb.py --count 20000 --passes 5 --configs new   # quick
    .venv/bin/python bench/bench_falkordb.py --count 0 --configs new,rewrite-only,old  # young store only
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automem_pipelines.domain.enrichment.batch import UPDATE_QUERY, node_update  # noqa: E402
from automem_pipelines.domain.enrichment.links import PRECEDED_BY_QUERY, SIMILAR_TO_QUERY  # noqa: E402
from automem_pipelines.domain.enrichment.model import EnrichmentOptions, Work  # noqa: E402
from automem_pipelines.domain.enrichment.writes import write_rows  # noqa: E402
from automem_pipelines.domain.entities import extract_entities  # noqa: E402
from automem_pipelines.domain.memory import node_props_for_write, parse_metadata  # noqa: E402
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.settings import EnrichmentSettings  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from automem_pipelines.stores.graph import GraphConfig, GraphStore, connect  # noqa: E402
from bench._common import bench_dir, table  # noqa: E402

# AutoMem's ENRICHMENT_* defaults, as the settings define them.
OPTIONS = EnrichmentSettings.model_construct().model_dump(
    include={
        "similarity_limit",
        "similarity_threshold",
        "enable_summaries",
        "max_attempts",
        "failure_backoff_seconds",
    }
)

GRAPH = "memories"
BATCH = 500  # ops/enrichment.py BATCH_SIZE
# What the server ran with before this persistence policy.
LEGACY_PERSISTENCE = ("--appendonly", "yes", "--appendfsync", "everysec")
LEGACY_MODULE_OPTIONS = ("RESULTSET_SIZE", str(falkordb_server.RESULTSET_SIZE))
CONFIGS = {
    "new": (falkordb_server.PERSISTENCE, falkordb_server.MODULE_OPTIONS),
    "rewrite-only": (falkordb_server.PERSISTENCE, LEGACY_MODULE_OPTIONS),
    "old": (LEGACY_PERSISTENCE, LEGACY_MODULE_OPTIONS),
}


def launch(root: Path, config: str) -> None:
    persistence, module_options = CONFIGS[config]
    paths = falkordb_server.paths_for(root)
    paths.root.mkdir(parents=True, exist_ok=True)
    command = falkordb_server.server_command(paths, persistence, module_options)
    subprocess.run(command, check=True, capture_output=True, timeout=30)


def first_query(socket: Path, deadline: float) -> bool:
    """Until the deadline: run a GRAPH query until one succeeds."""
    while time.monotonic() < deadline:
        client = redis.Redis(
            unix_socket_path=str(socket), socket_timeout=2, socket_connect_timeout=2
        )
        try:
            client.execute_command("GRAPH.QUERY", GRAPH, "MATCH (m:Memory) RETURN count(m)")
            return True
        except (redis.RedisError, OSError):
            time.sleep(0.05)
        finally:
            client.close()
    return False


def restart(
    root: Path, config: str, cap: float, crash: bool = False
) -> tuple[float, float | None, str]:
    """(stop seconds, restart-to-ready seconds or None when cut at cap, note)."""
    paths = falkordb_server.paths_for(root)
    began = time.perf_counter()
    if crash:
        for pid in falkordb_server.server_pids(paths):
            os.kill(pid, signal.SIGKILL)
        while falkordb_server.server_pids(paths):
            time.sleep(0.01)
    else:
        falkordb_server.stop(root, timeout=600)
    stopped = time.perf_counter() - began
    began = time.perf_counter()
    if config == "new":
        socket = falkordb_server.ensure_running(root, timeout=cap)
        ready = first_query(socket, time.monotonic() + cap)
    else:
        launch(root, config)
        ready = first_query(paths.socket, time.monotonic() + cap)
    seconds = time.perf_counter() - began
    if ready:
        return stopped, seconds, ""
    st = falkordb_server.status(root)
    note = f"cut at {cap:.0f} s, still {st.state}"
    if st.read_bytes is not None and st.data_bytes:
        note += f" ({min(st.read_bytes, st.data_bytes) / st.data_bytes:.0%} of the files read)"
    falkordb_server.stop(root, timeout=600)
    return stopped, None, note


class Workload:
    """The fixed parts of an enrichment pass: entities, temporal and semantic neighbours."""

    def __init__(self, rows: list[dict], seed: int = 7):
        rng = random.Random(seed)
        self.props = {r["id"]: dict(r) for r in rows}
        by_time = sorted(self.props, key=lambda mid: self.props[mid]["timestamp"])
        self.ids = [r["id"] for r in rows]
        self.entities = {
            mid: extract_entities(self.props[mid]["content"], None) for mid in self.ids
        }
        self.older = {mid: by_time[max(0, i - 2) : i][::-1] for i, mid in enumerate(by_time)}
        self.neighbour = {mid: rng.choice(self.ids) for mid in self.ids}

    def run_pass(self, graph: GraphStore, now: datetime, sample, limit: int | None = None) -> None:
        now_iso = now.isoformat()
        options = EnrichmentOptions(**OPTIONS)
        failures: dict[str, str] = {}
        ids = self.ids[:limit]
        for start in range(0, len(ids), BATCH):
            work = []
            for mid in ids[start : start + BATCH]:
                props = self.props[mid]
                w = Work(mid, props, props["content"], parse_metadata(props.get("metadata")))
                w.entities = self.entities[mid]
                w.temporal = self.older[mid]
                if self.neighbour[mid] != mid:
                    w.neighbours = [(self.neighbour[mid], 0.85)]
                work.append(w)
            temporal = [{"a": w.id, "b": o} for w in work for o in w.temporal]
            write_rows(
                graph, PRECEDED_BY_QUERY, temporal, {"now": now_iso}, lambda r: r["a"], failures
            )
            pairs: dict[frozenset, dict] = {}
            for w in work:
                for n, score in w.neighbours:
                    pairs.setdefault(frozenset((w.id, n)), {"a": w.id, "b": n, "score": score})
            write_rows(
                graph,
                SIMILAR_TO_QUERY,
                list(pairs.values()),
                {"now": now_iso},
                lambda r: r["a"],
                failures,
            )
            updates = [node_update(w, True, options, now_iso) for w in work]
            rows = [{k: v for k, v in u.items() if k != "_payload"} for u in updates]
            write_rows(graph, UPDATE_QUERY, rows, {}, lambda r: r["id"], failures)
            for u in updates:  # the next pass reads what this one wrote
                self.props[u["id"]].update(
                    metadata=u["metadata"], tags=u["tags"], summary=u["summary"]
                )
            sample()
        if failures:
            raise RuntimeError(
                f"{len(failures)} writes failed, e.g. {next(iter(failures.items()))}"
            )


def wait_for_rewrites(socket: Path) -> dict:
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        while True:
            info = client.info("persistence")
            if not (
                info["aof_rewrite_in_progress"]
                or info["aof_rewrite_scheduled"]
                or info.get("rdb_bgsave_in_progress")
            ):
                return info
            time.sleep(0.1)
    finally:
        client.close()


def log_tail_bytes(socket: Path) -> int:
    """Bytes of log after the snapshot at the start of the append-only file: what a start
    replays command by command."""
    info = wait_for_rewrites(socket)
    return int(info["aof_current_size"]) - int(info["aof_base_size"])


def rewrite(socket: Path) -> None:
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        wait_for_rewrites(socket)
        client.bgrewriteaof()
    finally:
        client.close()
    time.sleep(0.2)
    wait_for_rewrites(socket)


def snapshot_bytes(root: Path, socket: Path, keep: bool) -> int:
    """Size of one fresh RDB snapshot of the graph (SAVE into dump.rdb)."""
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        client.save()
    finally:
        client.close()
    rdb = falkordb_server.paths_for(root).rdb
    size = rdb.stat().st_size
    if not keep:
        rdb.unlink()
    return size


TAIL_MEMORIES = 10_000


def run(config: str, count: int, passes: int, cap: float) -> tuple[dict, list[dict]]:
    with bench_dir() as root:
        paths = falkordb_server.paths_for(root)
        if config != "new":
            launch(root, config)
            first_query(paths.socket, time.monotonic() + 60)
        rows = [node_props_for_write(m) for m in sample_memories(count)]
        graph = connect(GraphConfig(None, 0, None, GRAPH, root))  # the running server
        graph.ensure_indexes()
        graph.upsert_memories(rows, batch=5000)
        work = Workload(rows)
        peak = [falkordb_server.persistence_bytes(root)]

        def sample() -> None:
            peak[0] = max(peak[0], falkordb_server.persistence_bytes(root))

        began = time.perf_counter()
        now = datetime(2026, 12, 1, 8, tzinfo=UTC)
        for p in range(passes):
            work.run_pass(graph, now + timedelta(minutes=30 * p), sample)
            print(
                f"  {config}: pass {p + 1}/{passes}, {time.perf_counter() - began:.0f} s, "
                f"{falkordb_server.persistence_bytes(root) / 1e6:.1f} MB on disk",
                flush=True,
            )
        pass_seconds = (time.perf_counter() - began) / max(passes, 1)
        graph.close()
        info = wait_for_rewrites(paths.socket)
        on_disk = falkordb_server.persistence_bytes(root)
        snapshot = snapshot_bytes(root, paths.socket, keep=config == "old")
        disk = {
            "config": config,
            "count": count,
            "passes": passes,
            "pass_s": pass_seconds,
            "rewrites": info["aof_rewrites"],
            "disk": on_disk,
            "peak": peak[0],
            "snapshot": snapshot,
        }
        restarts = []

        def measure(situation: str, crash: bool = False) -> bool:
            tail = log_tail_bytes(paths.socket)
            stop_s, ready_s, note = restart(root, config, cap, crash=crash)
            restarts.append(
                {
                    "config": config,
                    "situation": situation,
                    "tail": tail,
                    "stop_s": stop_s,
                    "ready_s": ready_s,
                    "note": note,
                }
            )
            print(f"  {config}: {situation}: {restarts[-1]}", flush=True)
            return ready_s is not None

        if not measure(f"right after the {passes} passes"):
            return disk, restarts
        # A known tail: a rewrite, then one batch job of enrichment (below every rewrite trigger).
        rewrite(paths.socket)
        graph = connect(GraphConfig(None, 0, None, GRAPH, root))
        work.run_pass(
            graph, now + timedelta(minutes=30 * passes), lambda: None, limit=TAIL_MEMORIES
        )
        graph.close()
        if not measure(f"rewrite, then {TAIL_MEMORIES:,} memories enriched"):
            return disk, restarts
        if config == "new":
            graph = connect(GraphConfig(None, 0, None, GRAPH, root))
            work.run_pass(
                graph, now + timedelta(minutes=30 * (passes + 1)), lambda: None, limit=TAIL_MEMORIES
            )
            graph.close()
            time.sleep(1.5)  # appendfsync everysec
            measure(f"{TAIL_MEMORIES:,} more enriched, then kill -9", crash=True)
        return disk, restarts


def run_young(config: str, count: int, cap: float) -> dict:
    """A young store (the situation of issue 10): `count` memories loaded and enriched once,
    on a fresh data dir, so the log still holds the CREATE INDEX unless it was rewritten."""
    with bench_dir() as root:
        paths = falkordb_server.paths_for(root)
        if config != "new":
            launch(root, config)
            first_query(paths.socket, time.monotonic() + 60)
        rows = [node_props_for_write(m) for m in sample_memories(count)]
        graph = connect(GraphConfig(None, 0, None, GRAPH, root))
        graph.ensure_indexes()
        graph.upsert_memories(rows, batch=5000)
        Workload(rows).run_pass(graph, datetime(2026, 12, 1, 8, tzinfo=UTC), lambda: None)
        graph.close()
        tail = log_tail_bytes(paths.socket)
        rewrites = wait_for_rewrites(paths.socket)["aof_rewrites"]
        on_disk = falkordb_server.persistence_bytes(root)
        stop_s, ready_s, note = restart(root, config, cap)
        situation = f"young store: {count:,} loaded, enriched once ({rewrites} rewrites, {on_disk / 1e6:.1f} MB)"
        row = {
            "config": config,
            "situation": situation,
            "tail": tail,
            "stop_s": stop_s,
            "ready_s": ready_s,
            "note": note,
        }
        print(f"  {config}: {row}", flush=True)
        return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument(
        "--configs", default="new,old", help=f"comma-separated, from {', '.join(CONFIGS)}"
    )
    parser.add_argument(
        "--restart-cap", type=float, default=180.0, help="seconds a restart may take"
    )
    parser.add_argument(
        "--young-count",
        type=int,
        default=20_000,
        help="memories of the young-store situation (0: skip it)",
    )
    args = parser.parse_args()
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"--configs: unknown {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    disks, restarts = [], []
    for config in configs if args.count > 0 else []:
        print(f"{config}: {args.count} memories, {args.passes} enrichment passes", flush=True)
        disk, rows = run(config, args.count, args.passes, args.restart_cap)
        disks.append(disk)
        restarts.extend(rows)
    for config in configs if args.young_count > 0 else []:
        print(f"{config}: young store of {args.young_count} memories", flush=True)
        restarts.append(run_young(config, args.young_count, args.restart_cap))

    def mb(n: int) -> str:
        return f"{n / 1e6:.1f}"

    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    if disks:
        print(
            table(
                f"Persistence files after {args.count:,} memories and {args.passes} enrichment passes ({when})",
                [
                    "config",
                    "s/pass",
                    "AOF rewrites",
                    "files MB",
                    "max files MB",
                    "snapshot MB",
                    "files ÷ snapshot",
                    "max ÷ snapshot",
                ],
                [
                    [
                        d["config"],
                        f"{d['pass_s']:.1f}",
                        d["rewrites"],
                        mb(d["disk"]),
                        mb(d["peak"]),
                        mb(d["snapshot"]),
                        f"{d['disk'] / d['snapshot']:.2f}",
                        f"{d['peak'] / d['snapshot']:.2f}",
                    ]
                    for d in disks
                ],
            )
        )
    print(
        table(
            f"Restart to the first GRAPH query ({when})",
            ["config", "situation", "log tail MB", "stop s", "restart-to-ready s", "note"],
            [
                [
                    r["config"],
                    r["situation"],
                    mb(r["tail"]),
                    f"{r['stop_s']:.2f}",
                    f"{r['ready_s']:.2f}"
                    if r["ready_s"] is not None
                    else f"> {args.restart_cap:.0f}",
                    r["note"],
                ]
                for r in restarts
            ],
        )
    )


if __name__ == "__main__":
    main()
