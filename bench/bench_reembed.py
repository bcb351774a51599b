"""Re-embed benchmarks (issue: re-embed pipeline). Prints markdown tables.

  python bench/bench_reembed.py overhead     # 1 + 3: overhead ratio and incremental run, N=10,000
  python bench/bench_reembed.py latency      # 2: remote provider at 150 ms vs 0 ms, vs sequential loop
  python bench/bench_reembed.py scale        # 4: wall time and peak RSS at 10,000 and 100,000
Options: --n, --repeat, --qdrant (path|memory: local mode on disk, the default store, or in memory)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.domain.embeddings import OpenAIProvider, local_provider  # noqa: E402
from automem_pipelines.domain.memory import content_hash, make_stamps, merged_payload  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from bench._common import (  # noqa: E402
    bench_dir,
    instance_in,
    keep_open,
    load,
    make_settings,
    median,
    run_job,
    table,
    timed,
)


def qdrant_env(kind: str) -> dict[str, str]:
    return {"QDRANT_URL": ":memory:"} if kind == "memory" else {}


def embed_alone(provider, texts: list[str], batch: int) -> np.ndarray:
    return np.vstack(
        [provider.embed(texts[i : i + batch]).vectors for i in range(0, len(texts), batch)]
    )


def upsert_alone(store, rows: list[dict], vecs: np.ndarray, provider) -> None:
    payloads = [
        merged_payload(
            None,
            r,
            make_stamps(
                content_hash(r["content"]), provider.provider, provider.model, provider.dim
            ),
        )
        for r in rows
    ]
    store.ensure_collection(provider.dim)
    store.write_vectors([r["id"] for r in rows], vecs, payloads)  # the job's write call


def cmd_overhead(args) -> None:
    results = []
    for rep in range(args.repeat):
        with bench_dir() as root, instance_in(root) as instance:
            settings = make_settings(root, **qdrant_env(args.qdrant))
            rows = load(settings, args.n)
            provider = local_provider()
            texts = [r["content"] for r in rows]
            t_embed = timed(lambda: embed_alone(provider, texts, args.batch))
            vecs = embed_alone(provider, texts, args.batch)
            side = make_settings(root, QDRANT_COLLECTION="upsert_alone", **qdrant_env(args.qdrant))
            side_store = keep_open(side)
            t_upsert = timed(lambda: upsert_alone(side_store, rows, vecs, provider))
            t_job, full = run_job(settings, instance, reembed_run_config(args.batch, force=True))
            t_incr, incr = run_job(settings, instance, reembed_run_config(args.batch))
            assert full["processed"] == args.n and incr["skipped_unchanged"] == args.n
            results.append((t_embed, t_upsert, t_job, t_incr, incr["provider_requests"]))
            print(
                f"rep {rep}: embed {t_embed:.2f}s upsert {t_upsert:.2f}s job {t_job:.2f}s "
                f"incremental {t_incr:.2f}s",
                file=sys.stderr,
            )
    e, u, j, i = (median([r[k] for r in results]) for k in range(4))
    print(
        table(
            f"Overhead, N={args.n}, local provider, batch {args.batch}, Qdrant local mode ({args.qdrant}); "
            f"medians of {args.repeat}",
            [
                "embed alone (s)",
                "upsert alone (s)",
                "job, force=true (s)",
                "job ÷ (embed + upsert)",
                "job ÷ max(embed, upsert)",
                "incremental job (s)",
                "incremental ÷ forced",
                "incremental provider calls",
            ],
            [[e, u, j, j / (e + u), j / max(e, u), i, i / j, max(r[4] for r in results)]],
        )
    )


def cmd_latency(args) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.support.openai_server import OpenAIEmbeddingsServer

    server = OpenAIEmbeddingsServer().start()
    rows_out = []
    try:
        for rep in range(args.repeat):
            with bench_dir() as root, instance_in(root) as instance:
                env = {
                    "EMBEDDING_PROVIDER": "openai",
                    "OPENAI_API_KEY": "sk-bench",
                    "OPENAI_BASE_URL": server.base_url,
                    "VECTOR_SIZE": "256",
                    **qdrant_env(args.qdrant),
                }
                settings = make_settings(root, **env)
                rows = load(settings, args.n)
                timings = {}
                for latency in (0.0, args.latency):
                    server.state.latency = latency
                    timings[latency], summary = run_job(
                        settings, instance, reembed_run_config(args.batch, force=True)
                    )
                    assert summary["processed"] == args.n
                # The reference's method: one batch at a time, embed then upsert, same client/store.
                seq = make_settings(root, **{**env, "QDRANT_COLLECTION": "sequential"})
                store = keep_open(seq)
                provider = OpenAIProvider(
                    "text-embedding-3-small", 256, "sk-bench", server.base_url
                )
                store.ensure_collection(256)

                def sequential():
                    for i in range(0, len(rows), args.batch):
                        part = rows[i : i + args.batch]
                        vecs = provider.embed([r["content"] for r in part]).vectors
                        upsert_alone(store, part, vecs, provider)

                t_seq = timed(sequential)
                # Where the store caps it: the upsert of the same points alone.
                cap = make_settings(root, **{**env, "QDRANT_COLLECTION": "upsert_only"})
                cap_store = keep_open(cap)
                vecs = np.random.default_rng(0).standard_normal((len(rows), 256)).astype(np.float32)
                t_store = timed(lambda: upsert_alone(cap_store, rows, vecs, provider))
                rows_out.append((timings[0.0], timings[args.latency], t_seq, t_store))
                print(
                    f"rep {rep}: job@0 {timings[0.0]:.2f}s job@{args.latency} "
                    f"{timings[args.latency]:.2f}s sequential {t_seq:.2f}s store {t_store:.2f}s",
                    file=sys.stderr,
                )
    finally:
        server.stop()
    j0, jl, sq, st = (median([r[k] for r in rows_out]) for k in range(4))
    print(
        table(
            f"Remote provider, N={args.n}, batch {args.batch}, {args.latency * 1000:.0f} ms per request, "
            f"Qdrant local mode ({args.qdrant}); medians of {args.repeat}",
            [
                "job @0 ms (s)",
                f"job @{args.latency * 1000:.0f} ms (s)",
                "(a) ratio",
                "sequential loop (s)",
                "(b) sequential ÷ job",
                "store upsert alone (s)",
            ],
            [[j0, jl, jl / j0, sq, sq / jl, st]],
        )
    )


SCALE_CHILD = r"""
import json, sys, time, resource
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench._common import instance_in, make_settings, run_job, rss_mb, peak_rss_mb
from automem_pipelines.definitions import build_resources
from automem_pipelines.run_config import reembed_run_config
root = Path(sys.argv[1]); env = json.loads(sys.argv[2])
settings = make_settings(root, **env)
base = rss_mb()
t0 = time.perf_counter(); store = build_resources(settings, from_env=False)["qdrant"].open_store().__enter__()
store.ensure_collection(256); t_open = time.perf_counter() - t0
with instance_in(root) as instance:
    t_job, summary = run_job(settings, instance, reembed_run_config(256, force=True))
after = rss_mb()
print(json.dumps({"open_s": t_open, "job_s": t_job, "processed": summary["processed"],
                  "rss_before_mb": base, "rss_after_mb": after, "peak_mb": peak_rss_mb()}))
"""


def cmd_scale(args) -> None:
    repo = str(Path(__file__).resolve().parent.parent)
    out = []
    for n in args.sizes:
        with bench_dir() as root:
            env = qdrant_env(args.qdrant)
            load(make_settings(root, **env), n)
            child = subprocess.run(
                [sys.executable, "-c", SCALE_CHILD, str(root), json.dumps(env), repo],
                capture_output=True,
                text=True,
                cwd=repo,
            )
            if child.returncode != 0:
                raise SystemExit(child.stderr[-3000:])
            r = json.loads(child.stdout.strip().splitlines()[-1])
            # A second process reopens the filled store: what a new run worker pays, and the
            # memory local mode keeps for the points alone.
            reopen = subprocess.run(
                [sys.executable, "-c", SCALE_REOPEN, str(root), json.dumps(env), repo],
                capture_output=True,
                text=True,
                cwd=repo,
            )
            ro = (
                json.loads(reopen.stdout.strip().splitlines()[-1]) if reopen.returncode == 0 else {}
            )
            out.append(
                [
                    n,
                    r["job_s"],
                    round(n / r["job_s"]),
                    r["rss_before_mb"],
                    r["peak_mb"],
                    r["rss_after_mb"],
                    r["peak_mb"] - r["rss_after_mb"],
                    ro.get("store_mb", float("nan")) - ro.get("base_mb", float("nan")),
                    ro.get("open_s", float("nan")),
                ]
            )
            print(f"n={n}: {r} reopen={ro}", file=sys.stderr)
    print(
        table(
            f"Scale, local provider, batch 256, Qdrant local mode ({args.qdrant}), one process per size",
            [
                "memories",
                "job (s)",
                "memories/s",
                "RSS before run (MB)",
                "peak RSS (MB)",
                "RSS after run (MB)",
                "pipeline window: peak − after (MB)",
                "local store alone: reopened, RSS growth (MB)",
                "reopen store (s)",
            ],
            out,
        )
    )


SCALE_REOPEN = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from bench._common import make_settings, rss_mb
from automem_pipelines.definitions import build_resources
settings = make_settings(Path(sys.argv[1]), **json.loads(sys.argv[2]))
import automem_pipelines.stores.vectors, dagster  # same imports as the job process
base = rss_mb(); t0 = time.perf_counter()
store = build_resources(settings, from_env=False)["qdrant"].open_store().__enter__(); n = store.count()
print(json.dumps({"open_s": time.perf_counter() - t0, "store_mb": rss_mb(), "base_mb": base, "points": n}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--qdrant", choices=["path", "memory"], default="path")
    p.set_defaults(func=cmd_overhead)
    p = sub.add_parser("latency")
    p.add_argument("--n", type=int, default=5_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--latency", type=float, default=0.150)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--qdrant", choices=["path", "memory"], default="path")
    p.set_defaults(func=cmd_latency)
    p = sub.add_parser("scale")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--qdrant", choices=["path", "memory"], default="path")
    p.set_defaults(func=cmd_scale)
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", "")
    args.func(args)


if __name__ == "__main__":
    main()
