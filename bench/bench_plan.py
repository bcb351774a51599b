"""The plan's time against the re-embed it prices (issue 14's "plan time for 100,000
memories, target ≤ 10% of the backfill's time"). Prints a markdown table.

  python bench/bench_plan.py               # 100,000 memories
  python bench/bench_plan.py --n 20000
  python bench/bench_plan.py --latency 0.15   # also against the OpenAI-wire test model

On one graph of N sample memories, in-memory Qdrant (QDRANT_URL=:memory:), the local model:
- backfill: a forced re-embed of every memory into an empty collection (the job, in process);
- plan-only run: the same job with plan_only (enumerate, select, price; nothing embedded);
- plan, cl100k: the domain functions a migration's plan stage runs (plan_reembed on an empty
  collection, then price_selection for text-embedding-3-small: every content read from the
  graph and counted with the cl100k_base tokenizer), and the tokenizer's share of it;
- with --latency S: the plan-only run and the forced re-embed again with the OpenAI-wire
  test server (tests/support/openai_server.py, its own process) as text-embedding-3-small
  256-d, answering each request after S seconds: what a paid backfill's time looks like.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_resources  # noqa: E402
from automem_pipelines.domain import pricing  # noqa: E402
from automem_pipelines.domain.selection import plan_reembed  # noqa: E402
from automem_pipelines.domain.tokens import counter_for  # noqa: E402
from automem_pipelines.domain.vector_state import EmbeddingIdentity  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from bench._common import (  # noqa: E402
    ProviderProcess,
    bench_dir,
    instance_in,
    keep_open,
    load,
    make_settings,
    run_job,
    table,
)

TARGET = EmbeddingIdentity("openai", "text-embedding-3-small", 1536)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latency", type=float, default=None, help="seconds per request")
    args = parser.parse_args()
    n = args.n
    with bench_dir() as root, instance_in(root) as instance:
        started = time.perf_counter()
        rows = load(make_settings(root), n)
        print(f"loaded {n} memories in {time.perf_counter() - started:.1f}s", flush=True)

        def settings_for(name: str, **env: str):
            settings = make_settings(root, QDRANT_URL=":memory:", QDRANT_COLLECTION=name, **env)
            keep_open(settings)  # an in-memory store lives while it is open
            return settings

        settings = settings_for("plan_run")
        plan_run, planned = run_job(
            settings, instance, reembed_run_config(args.batch_size, plan_only=True)
        )
        assert planned["status"] == "planned" and planned["memories"] == n, planned
        print(f"plan-only run: {plan_run:.1f}s", flush=True)

        settings = settings_for("plan_cl100k")
        res = build_resources(settings, from_env=False)
        started = time.perf_counter()
        with res["falkordb"].get_store() as graph, res["qdrant"].open_store() as vectors:
            provider = res["embeddings"].get_provider()
            selection = plan_reembed(graph, vectors, provider, None, False)
            plan = pricing.price_selection(selection, graph, TARGET, args.batch_size)
        plan_cl100k = time.perf_counter() - started
        assert plan.memories == n, plan
        started = time.perf_counter()
        tokens = counter_for(TARGET.provider, TARGET.model).count(r["content"] for r in rows)
        tokenizer = time.perf_counter() - started
        assert tokens == plan.tokens
        print(f"plan cl100k: {plan_cl100k:.1f}s ({tokenizer:.1f}s tokenizer)", flush=True)

        settings = settings_for("backfill")
        backfill, summary = run_job(
            settings, instance, reembed_run_config(args.batch_size, force=True)
        )
        assert summary["processed"] == n, summary
        print(f"backfill: {backfill:.1f}s", flush=True)
        wire = []
        if args.latency is not None:
            server = ProviderProcess()
            try:
                server.set_latency(args.latency)
                env = {
                    "EMBEDDING_PROVIDER": "openai",
                    "OPENAI_API_KEY": "bench",
                    "OPENAI_BASE_URL": server.base_url,
                    "EMBEDDING_MODEL": TARGET.model,
                    "VECTOR_SIZE": "256",
                }
                settings = settings_for("wire", **env)
                wire_plan, wplan = run_job(
                    settings, instance, reembed_run_config(args.batch_size, plan_only=True)
                )
                assert wplan["memories"] == n and wplan["tokens"] == tokens, wplan
                wire_fill, wsum = run_job(
                    settings, instance, reembed_run_config(args.batch_size, force=True)
                )
                assert wsum["processed"] == n, wsum
            finally:
                server.stop()
            ms = f"{args.latency * 1000:g} ms/request"
            wire = [
                [f"forced re-embed, OpenAI-wire {ms} (backfill)", wire_fill, 1.0, n, "-"],
                [
                    "plan-only run (job, text-embedding-3-small, exact) ÷ that backfill",
                    wire_plan,
                    wire_plan / wire_fill,
                    wplan["memories"],
                    wplan["tokens"],
                ],
            ]
            print(f"wire: plan {wire_plan:.1f}s, backfill {wire_fill:.1f}s", flush=True)

    print(
        table(
            f"Plan vs forced re-embed, {n:,} memories (local model, in-memory Qdrant, "
            f"batch {args.batch_size})",
            ["pass", "seconds", "÷ backfill", "memories", "tokens"],
            [
                ["forced re-embed (backfill)", backfill, 1.0, n, summary.get("tokens") or "-"],
                [
                    "plan-only run (job, local: chars/4 estimate)",
                    plan_run,
                    plan_run / backfill,
                    planned["memories"],
                    planned["tokens"],
                ],
                [
                    "plan, text-embedding-3-small (cl100k_base, exact)",
                    plan_cl100k,
                    plan_cl100k / backfill,
                    plan.memories,
                    plan.tokens,
                ],
                ["  of which the tokenizer", tokenizer, tokenizer / backfill, n, tokens],
                *wire,
            ],
        )
    )


if __name__ == "__main__":
    main()
