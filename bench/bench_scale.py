"""Scale with an in-memory store (issue benchmark 3): wall time, throughput and the pipeline's own
peak RSS of a forced re-embed at 10,000, 100,000 and 1,000,000 memories. Prints markdown tables.

    .venv/bin/python bench/bench_scale.py                          # 10k, 100k, 1M
    .venv/bin/python bench/bench_scale.py --sizes 10000 100000     # quicker
    .venv/bin/python bench/bench_scale.py --trace --sizes 10000 100000   # where memory grows

Targets: throughput at 1 M within 20% of that at 10 k; pipeline RSS at 1 M <= 1.5x that at 10 k.

One fresh child process per size (so no size inherits another's heap). In it:

1. Imports, the job definition, and a warm-up run of the job on the still empty stores (it
   creates the collection, records its identity, and loads the parts of Dagster that a first
   run imports lazily: their memory is the same at every size and is not the pipeline's
   per-memory cost).
2. The stores are loaded in batches of 5,000: FalkorDB nodes as ``bench._common.load`` writes
   them, and Qdrant points with random unit vectors and exactly the payload and stamps the
   re-embed writes (``bench_drift`` builds its store the same way); the stamps name the
   configured model, so the identity check needs no provider call. Batches keep the load's own
   temporaries to one batch, whatever N, so the free memory the allocator keeps after the load
   (and that the run may reuse without RSS growth) is the same at every size.
3. After ``gc.collect()`` and glibc's ``malloc_trim(0)``: the baseline RSS (interpreter,
   imports, the loaded store). The store's own size = this minus the RSS before the load.
4. The forced re-embed runs in process (``execute_in_process``, as bench_reembed does), with
   the kernel's peak-RSS mark reset just before (``echo 5 > /proc/self/clear_refs`` resets
   VmHWM to the current RSS) and read after; a thread also samples VmRSS every 10 ms, so the
   peak of each step kind can be told apart (step start/end times from the run's event log).
   Pipeline peak RSS = VmHWM - baseline. The forced run rewrites every existing point in
   place (same ids, same vector size), so the store does not grow during it; what grows is
   the pipeline's.

Why one process with an in-memory store, and not an on-disk store opened by a separate
process: qdrant-client's local mode, on disk too, keeps the whole collection as Python
objects in the process that opens it (the job's), so a "separate store process" is only
possible with a Qdrant server, which this machine does not have; local mode on disk also
writes ~500 points/s, too slow to load 1M. Subtracting the idle loaded store (step 3) is
therefore the honest split available here. FalkorDB runs as its own redis-server process, so
its memory is never in ours; its RSS is shown for information.

``--trace`` runs the sizes again instead, under tracemalloc (started at the baseline, one
frame), snapshots the Python heap at the start of the first chunk step and stops tracing
there (see Snapshots), and prints the allocation lines that grow most from the smallest size
to the largest. Its timings mean nothing (tracing slows the run several times).

``--io-manager fs`` runs with the file IO manager a deployed run uses by default instead of
execute_in_process's in-memory one, and shows what it leaves on disk.

Each row also shows the load average over the run: the machine is shared, and throughput
follows it.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from array import array
from pathlib import Path

import dagster as dg
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_definitions, build_resources  # noqa: E402
from automem_pipelines.domain import reembed  # noqa: E402
from automem_pipelines.domain.embeddings import local_provider  # noqa: E402
from automem_pipelines.domain.memory import (  # noqa: E402
    content_hash,
    make_stamps,
    merged_payload,
    node_props_for_write,
)
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.domain.vector_state import EmbeddingIdentity  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from bench._common import bench_dir, instance_in, keep_open, make_settings, rss_mb, table  # noqa: E402

LOAD_BATCH = 5_000
SAMPLE_EVERY = 0.010  # seconds between VmRSS samples
TRACE_FRAMES = 1
ENV = {"QDRANT_URL": ":memory:", "EMBEDDING_PROVIDER": "local"}
STEP_KINDS = ("enumerate_memories", "batch_memories", "reembed_chunk")


# -- memory readings ------------------------------------------------------------------------
def status_mb(key: str, pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


def settle() -> float:
    """RSS after a full collection and after glibc returned its free pages: live memory."""
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return rss_mb()


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # VmHWM := VmRSS


class RssSampler:
    """VmRSS every SAMPLE_EVERY seconds in a thread, kept in two flat arrays (16 bytes a
    sample, so the sampler's own memory stays ~1 MB even for a run of an hour)."""

    def __enter__(self) -> RssSampler:
        self.times, self.mbs = array("d"), array("d")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY):
            self.times.append(time.time())
            self.mbs.append(rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float = 0.0, end: float = float("inf")) -> float:
        return max((mb for t, mb in zip(self.times, self.mbs) if start <= t <= end), default=0.0)


def falkordb_rss_mb(root: Path) -> float:
    pids = falkordb_server.server_pids(falkordb_server.paths_for(root))
    return sum(status_mb("VmRSS", pid) for pid in pids) if pids else float("nan")


def dir_mb(path: Path) -> float:
    """What the fs IO manager left on disk (0 with the mem one)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# -- the stores -----------------------------------------------------------------------------
def load_stores(settings, store, n: int, identity: EmbeddingIdentity, seed: int = 7) -> None:
    """N memories into FalkorDB and the collection, LOAD_BATCH at a time (see the docstring)."""
    rng = np.random.default_rng(seed)
    memories = sample_memories(n, seed=seed)
    with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
        graph.ensure_indexes()
        with store.bulk_phase():
            while True:
                rows = [node_props_for_write(m) for _, m in zip(range(LOAD_BATCH), memories)]
                if not rows:
                    break
                graph.upsert_memories(rows, batch=LOAD_BATCH)
                vecs = rng.standard_normal((len(rows), identity.dim)).astype(np.float32)
                vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
                stamps = [
                    make_stamps(content_hash(r["content"]), *identity.as_dict().values())
                    for r in rows
                ]
                payloads = [merged_payload(None, r, s) for r, s in zip(rows, stamps)]
                store.upsert([r["id"] for r in rows], vecs, payloads)
                del rows, vecs, stamps, payloads


# -- one run --------------------------------------------------------------------------------
def step_windows(instance, run_id: str) -> dict[str, tuple[float, float]]:
    """step key -> (start, end) wall-clock times, from the run's event log."""
    starts, ends = {}, {}
    for entry in instance.all_logs(run_id):
        ev = entry.dagster_event
        if ev is None or not entry.step_key:
            continue
        if ev.event_type_value == "STEP_START":
            starts[entry.step_key] = entry.timestamp
        elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            ends[entry.step_key] = entry.timestamp
    return {k: (starts[k], ends[k]) for k in starts if k in ends}


def kind_of(step_key: str) -> str:
    return step_key.split("[")[0]


def run_forced(
    settings, instance, batch: int, chunk_size: int | None, io_manager: str, force: bool = True
):
    """The job in process. ``io_manager``: "mem" is what execute_in_process uses by default
    (every step output kept in memory until the run ends); "fs" is the default of a deployed
    run (each output pickled to a file under the run's storage, read back by the next step)."""
    job = build_definitions(settings).get_job_def("reembed_job")
    resources = build_resources(settings, from_env=False)
    if io_manager == "fs":
        resources["io_manager"] = dg.FilesystemIOManager(
            base_dir=str(settings.data_dir / "io_storage")
        )
    started = time.perf_counter()
    result = job.execute_in_process(
        run_config=reembed_run_config(batch, force=force, chunk_size=chunk_size),
        instance=instance,
        resources=resources,
    )
    return time.perf_counter() - started, result


def enumerate_seconds(result) -> float:
    for ev in result.events_for_node("enumerate_memories"):
        if ev.event_type_value == "STEP_OUTPUT":
            return float(ev.step_output_data.metadata["seconds"].value)
    return float("nan")


class Snapshots:
    """A tracemalloc snapshot at the start of the first chunk step, taken by wrapping the
    domain function that op calls (bench only); tracing stops there. By then the plan and the
    fan-out have run and no point has been rewritten yet, so everything traced is the
    pipeline's (the store's rewritten payloads would be traced from the first write on, their
    old copies' frees not). What a chunk step holds beyond that is bounded by its windows."""

    def __init__(self, out: Path):
        self.out = out
        self.taken: dict[str, float] = {}

    def install(self) -> None:
        unit = reembed.reembed_ids

        def reembed_ids(*a, **kw):
            if tracemalloc.is_tracing():
                gc.collect()
                snap = tracemalloc.take_snapshot()
                tracemalloc.stop()
                snap.dump(str(self.out / "first_chunk.snap"))
                self.taken["first_chunk"] = sum(s.size for s in snap.statistics("filename"))
                self.taken["first_chunk"] /= 2**20
            return unit(*a, **kw)

        reembed.reembed_ids = reembed_ids


def measured_run(settings, instance, batch, chunk_size, io_manager, force=True) -> dict:
    """One run, with its peak RSS over the settled RSS just before it, per op too."""
    baseline = settle()
    reset_peak()
    load_before = os.getloadavg()[0]
    with RssSampler() as sampler:
        wall, result = run_forced(settings, instance, batch, chunk_size, io_manager, force)
    hwm = status_mb("VmHWM")
    load_after = os.getloadavg()[0]
    after = rss_mb()
    summary = result.output_for_node("summarize_reembed")
    windows = step_windows(instance, result.run_id)
    enumerate_s = enumerate_seconds(result)
    del result  # holds the in-memory IO manager's outputs
    settled_after = settle()  # what the run left: the store's growth, if any
    by_kind: dict[str, dict[str, float]] = {}
    for key, (s, e) in windows.items():
        k = by_kind.setdefault(kind_of(key), {"seconds": 0.0, "steps": 0, "peak_mb": 0.0})
        k["seconds"] += e - s
        k["steps"] += 1
        k["peak_mb"] = max(k["peak_mb"], sampler.peak(s, e) - baseline)
    return {
        "wall_s": wall,
        "job_s": summary["seconds"],
        "processed": summary["processed"],
        "skipped_unchanged": summary["skipped_unchanged"],
        "enumerate_s": enumerate_s,
        "embed_s": summary["embed_seconds"],
        "upsert_s": summary["upsert_seconds"],
        "baseline_mb": baseline,
        "hwm_mb": hwm,
        "sampled_peak_mb": sampler.peak(),
        "after_mb": after,
        "settled_after_mb": settled_after,
        "load_avg": (load_before, load_after),
        "io_files_mb": dir_mb(settings.data_dir / "io_storage"),
        "steps": by_kind,
    }


def child(n: int, args) -> dict:
    os.environ.setdefault("DAGSTER_HOME", "")
    identity = EmbeddingIdentity.of(local_provider())
    how = (args.batch, args.chunk_size, args.io_manager)
    with bench_dir() as root, instance_in(root) as instance:
        settings = make_settings(root, **ENV)
        store = keep_open(settings)  # the run's resource shares this in-memory store
        t0 = time.perf_counter()
        _, warm = run_forced(settings, instance, *how)  # empty stores
        warm_s = time.perf_counter() - t0
        assert warm.output_for_node("summarize_reembed")["total"] == 0
        del warm
        before_load = settle()
        t0 = time.perf_counter()
        load_stores(settings, store, n, identity)
        load_s = time.perf_counter() - t0
        assert store.count() == n
        snaps = None
        if args.trace_dir:
            snaps = Snapshots(Path(args.trace_dir))
            snaps.install()
            tracemalloc.start(TRACE_FRAMES)
        out = measured_run(settings, instance, *how)
        assert out["processed"] == n, out
        out.update(
            n=n,
            warmup_s=warm_s,
            load_s=load_s,
            rss_before_load_mb=before_load,
            falkordb_mb=falkordb_rss_mb(root),
            snapshots_mb=snaps.taken if snaps else {},
        )
        if args.incremental:  # every point is now current: a run that only enumerates/selects
            out["incremental"] = measured_run(settings, instance, *how, force=False)
            assert out["incremental"]["skipped_unchanged"] == n, out["incremental"]
        return out


# -- the parent: one child per size, tables --------------------------------------------------
def run_child(n: int, args, trace_dir: str | None = None) -> dict:
    cmd = [sys.executable, __file__, "--child", str(n), "--batch", str(args.batch)]
    cmd += ["--io-manager", args.io_manager]
    if args.chunk_size:
        cmd += ["--chunk-size", str(args.chunk_size)]
    if trace_dir:
        cmd += ["--trace-dir", trace_dir]
    if args.incremental:
        cmd.append("--incremental")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"size {n} failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"n={n}: {json.dumps(result)}", file=sys.stderr, flush=True)
    return result


def print_tables(results: list[dict], args) -> None:
    first = results[0]
    rate0 = first["n"] / first["job_s"]
    pipe0 = first["hwm_mb"] - first["baseline_mb"]
    rows = []
    for r in results:
        pipe = r["hwm_mb"] - r["baseline_mb"]
        rows.append(
            [
                f"{r['n']:,}",
                round(r["load_s"], 1),
                round(r["wall_s"], 1),
                round(r["job_s"], 1),
                round(r["n"] / r["job_s"]),
                f"{r['n'] / r['job_s'] / rate0:.2f}",
                round(r["baseline_mb"] - r["rss_before_load_mb"]),
                round(r["baseline_mb"]),
                round(r["hwm_mb"]),
                round(pipe),
                f"{pipe / pipe0:.2f}" if pipe0 > 0 else "-",
                round(r["after_mb"] - r["baseline_mb"]),
                round(r.get("settled_after_mb", float("nan")) - r["baseline_mb"]),
                round(r["falkordb_mb"]),
                round(r.get("io_files_mb", 0)),
                "–".join(f"{x:.1f}" for x in r.get("load_avg", ())) or "-",
            ]
        )
    chunk = args.chunk_size or reembed.CHUNK_SIZE
    print(
        table(
            f"Scale, forced re-embed in process, local provider, batch {args.batch}, chunk "
            f"{chunk}, IO manager {args.io_manager}, Qdrant in memory (in this process), "
            "FalkorDB embedded (its own process)",
            [
                "memories",
                "load (s)",
                "run wall (s)",
                "job seconds",
                "memories/s",
                "rate ÷ first",
                "store alone (MB)",
                "baseline RSS (MB)",
                "peak RSS (MB)",
                "pipeline peak: peak − baseline (MB)",
                "pipeline ÷ first",
                "RSS after − baseline (MB)",
                "settled after − baseline (MB)",
                "FalkorDB RSS (MB, other process)",
                "IO manager files (MB)",
                "load avg (start–end)",
            ],
            rows,
        )
    )
    rows = []
    for r in results:
        steps = r["steps"]
        in_steps = sum(v["seconds"] for v in steps.values())
        row = [f"{r['n']:,}", round(r["wall_s"], 1), round(r["enumerate_s"], 2)]
        for kind in STEP_KINDS:
            v = steps.get(kind, {"seconds": 0.0, "steps": 0, "peak_mb": 0.0})
            row += [f"{v['seconds']:.1f} ({v['steps']})", round(v["peak_mb"])]
        row.append(round(r["wall_s"] - in_steps, 1))
        rows.append(row)
    header = ["memories", "wall (s)", "enumerate op 'seconds'"]
    for kind in STEP_KINDS:
        header += [f"{kind} s (steps)", f"{kind} peak − baseline (MB)"]
    header.append("outside steps (s)")
    print(
        table(
            "Where the wall and the memory go: step durations summed by op (event log), and the "
            "sampled RSS peak over the baseline while steps of that op ran",
            header,
            rows,
        )
    )


def print_incremental(results: list[dict]) -> None:
    rows = []
    for r in results:
        inc = r.get("incremental")
        if inc:
            rows.append(
                [
                    f"{r['n']:,}",
                    round(inc["wall_s"], 1),
                    round(inc["job_s"], 1),
                    round(inc["enumerate_s"], 1),
                    round(r["n"] / inc["enumerate_s"]),
                    inc["skipped_unchanged"],
                    round(inc["hwm_mb"] - inc["baseline_mb"]),
                    "–".join(f"{x:.1f}" for x in inc["load_avg"]),
                ]
            )
    if rows:
        print(
            table(
                "Incremental run after the forced one (every point current: enumerate + select, "
                "no chunk step)",
                [
                    "memories",
                    "run wall (s)",
                    "job seconds",
                    "enumerate op 'seconds'",
                    "memories/s selected",
                    "skipped unchanged",
                    "pipeline peak: peak − settled RSS before (MB)",
                    "load avg (start–end)",
                ],
                rows,
            )
        )


def print_trace(sizes: list[int], trace_root: Path, results: dict[int, dict], top: int) -> None:
    small, large = sizes[0], sizes[-1]
    for name in ("first_chunk",):
        a = tracemalloc.Snapshot.load(str(trace_root / str(small) / f"{name}.snap"))
        b = tracemalloc.Snapshot.load(str(trace_root / str(large) / f"{name}.snap"))
        rows = []
        for stat in b.compare_to(a, "lineno")[:top]:
            frame = stat.traceback[0]
            where = f"{_short(frame.filename)}:{frame.lineno}"
            rows.append(
                [
                    where,
                    round((stat.size - stat.size_diff) / 2**20, 2),
                    round(stat.size / 2**20, 2),
                    round(stat.size_diff / 2**20, 2),
                    stat.count,
                ]
            )
        totals = (
            results[small]["snapshots_mb"].get(name),
            results[large]["snapshots_mb"].get(name),
        )
        print(
            table(
                f"Python heap held by the run at '{name}' (tracemalloc), top growers {small:,} → {large:,}; totals {totals[0]:.1f} → "
                f"{totals[1]:.1f} MB",
                ["allocated at", f"{small:,} (MB)", f"{large:,} (MB)", "growth (MB)", "blocks"],
                rows,
            )
        )


def _short(filename: str) -> str:
    for marker in ("site-packages/", "automem_pipelines/", "lib/python3"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return filename


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--batch", type=int, default=256, help="texts per embedding request")
    parser.add_argument("--chunk-size", type=int, default=None, help="the job's chunk_size")
    parser.add_argument(
        "--io-manager",
        choices=["mem", "fs"],
        default="mem",
        help="mem: execute_in_process's default (outputs kept in memory); fs: a deployed "
        "run's default (outputs pickled to files)",
    )
    parser.add_argument(
        "--trace", action="store_true", help="instead of timing, find where the heap grows"
    )
    parser.add_argument(
        "--incremental",
        action="store_true",
        help="after the forced run, time a run without force (everything current: select only)",
    )
    parser.add_argument("--top", type=int, default=12, help="lines shown by --trace")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args)))
        return
    sizes = sorted(args.sizes)
    if not args.trace:
        results = [run_child(n, args) for n in sizes]
        print_tables(results, args)
        print_incremental(results)
        return
    with tempfile.TemporaryDirectory(prefix="amb-trace-") as tmp:
        traced = {}
        for n in sizes:
            (Path(tmp) / str(n)).mkdir()
            traced[n] = run_child(n, args, str(Path(tmp) / str(n)))
        print_trace(sizes, Path(tmp), traced, args.top)


if __name__ == "__main__":
    main()
