"""Enrichment throughput on sample memories with the real spaCy model. Prints markdown tables.

  python bench/bench_enrichment.py                  # 1,000 memories, 5 repeats
  python bench/bench_enrichment.py --n 1000 --repeat 5 --batch 500 --qdrant memory

Measured in one process, on the same texts, interleaved per repeat:
  * spaCy's own ``nlp.pipe`` with the pipeline enrichment loads (NER only), and with the
    full en_core_web_sm pipeline (what AutoMem runs per memory), for reference;
  * ``enrich_batch`` (the domain function the job's step calls) over all memories, forced,
    with the time split into NLP, graph reads, graph writes, neighbour search and payloads;
  * the whole ``enrichment_job`` executed in process (Dagster overhead included).
The store is a throw-away embedded FalkorDB; Qdrant is local mode (``:memory:`` by default,
since local mode on disk is far slower than a Qdrant server at payload writes).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import dagster as dg  # noqa: E402

from automem_pipelines.constants import ENRICHMENT_JOB, REEMBED_JOB, SUMMARY_OPS  # noqa: E402
from automem_pipelines.definitions import build_definitions, build_resources  # noqa: E402
from automem_pipelines.domain.enrichment import enrich_batch  # noqa: E402
from automem_pipelines.domain.memory import node_props_for_write  # noqa: E402
from automem_pipelines.domain.nlp import load_entity_model  # noqa: E402
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.run_config import enrichment_run_config, reembed_run_config  # noqa: E402
from automem_pipelines.settings import Settings  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from bench._common import keep_open  # noqa: E402

STAGES = (
    "nlp_seconds",
    "graph_read_seconds",
    "graph_write_seconds",
    "neighbour_seconds",
    "payload_seconds",
)


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=500, help="memories per enrich_batch call")
    parser.add_argument("--nlp-batch", type=int, default=64, help="nlp.pipe batch size")
    parser.add_argument("--qdrant", choices=("memory", "path"), default="memory")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="amb-"))
    try:
        env = {"AUTOMEM_DATA_DIR": str(root)}
        if args.qdrant == "memory":
            env["QDRANT_URL"] = ":memory:"
        settings = Settings.from_env(env)
        res = build_resources(settings, from_env=False)
        rows = [node_props_for_write(m) for m in sample_memories(args.n, seed=7)]
        ids = [r["id"] for r in rows]
        texts = [r["content"] for r in rows]
        words = sum(len(t.split()) for t in texts) / len(texts)
        defs = build_definitions(settings)
        with dg.DagsterInstance.ephemeral() as instance, res["falkordb"].get_store() as graph:
            store = keep_open(res)  # before the runs: an in-memory store lives while it is open
            graph.ensure_indexes()
            graph.upsert_memories(rows, batch=5000)
            defs.get_job_def(REEMBED_JOB).execute_in_process(
                run_config=reembed_run_config(), resources=res, instance=instance
            )
            ner = load_entity_model(settings.enrichment.spacy_model)
            full = load_entity_model(settings.enrichment.spacy_model, ner_only=False)
            options = dataclasses.replace(res["nlp"].options(), nlp_batch_size=args.nlp_batch)
            ner.pipe(texts[:50])  # warm-up: models, and Dagster's first-run costs
            full.pipe(texts[:50])
            defs.get_job_def(ENRICHMENT_JOB).execute_in_process(
                run_config=enrichment_run_config(ids[:1], forced=False),
                resources=res,
                instance=instance,
            )
            graph.query("MATCH (m:Memory {id: $id}) SET m.processed = false", {"id": ids[0]})

            pipe_ner, pipe_full, enrich_times, job_times = [], [], [], []
            stage_sums = {s: [] for s in STAGES}
            links = {}
            for rep in range(args.repeat):
                pipe_ner.append(timed(lambda: ner.pipe(texts, batch_size=args.nlp_batch))[0])
                pipe_full.append(timed(lambda: full.pipe(texts, batch_size=args.nlp_batch))[0])

                def run_domain():
                    return [
                        enrich_batch(
                            graph, store, ner, ids[i : i + args.batch], rep > 0, options, i
                        )
                        for i in range(0, len(ids), args.batch)
                    ]  # first repeat enriches fresh memories, later ones re-enrich (forced)

                seconds, results = timed(run_domain)
                enriched = sum(len(r.enriched) for r in results)
                assert enriched == len(ids), f"only {enriched} of {len(ids)} enriched"
                enrich_times.append(seconds)
                for s in STAGES:
                    stage_sums[s].append(sum(getattr(r, s) for r in results))
                links = {
                    "temporal": sum(r.temporal_links for r in results),
                    "semantic pairs": sum(r.semantic_links for r in results),
                    "pattern": sum(r.pattern_links for r in results),
                    "no vector": sum(len(r.no_vector) for r in results),
                }
                seconds, result = timed(
                    lambda: defs.get_job_def(ENRICHMENT_JOB).execute_in_process(
                        run_config=enrichment_run_config(ids, forced=True),
                        resources=res,
                        instance=instance,
                    )
                )
                summary = result.output_for_node(SUMMARY_OPS[ENRICHMENT_JOB])
                assert summary["enriched"] == len(ids)
                job_times.append(seconds)

        med, best = statistics.median, min
        n = len(ids)
        base = n / best(pipe_ner)
        print(
            f"\n{n} sample memories (mean {words:.0f} words), model {ner.name}, "
            f"{args.repeat} repeats interleaved (best and median), batch {args.batch}, "
            f"nlp.pipe batch {args.nlp_batch}, Qdrant local {args.qdrant}\n"
        )

        def row(what: str, times: list[float]) -> list[str]:
            return [
                what,
                f"{best(times):.2f}",
                f"{med(times):.2f}",
                f"{n / best(times):.0f}",
                f"{(n / best(times)) / base:.0%}",
                f"{med(pipe_ner) / med(times):.0%}",
            ]

        rows_out = [
            row("spaCy nlp.pipe, NER only (baseline)", pipe_ner),
            row("spaCy nlp.pipe, full pipeline (what AutoMem loads)", pipe_full),
            row("enrich_batch (domain, all stages)", enrich_times),
            row("enrichment_job, execute_in_process", job_times),
        ]
        print(
            table(
                [
                    "what",
                    "best s",
                    "median s",
                    "memories/s (best)",
                    "vs baseline (best)",
                    "vs baseline (median)",
                ],
                rows_out,
            )
        )
        total = med(enrich_times)
        print("\nWhere enrich_batch's time goes (median seconds per stage)\n")
        stage_rows = [
            [s.replace("_seconds", ""), f"{med(v):.3f}", f"{med(v) / total:.0%}"]
            for s, v in stage_sums.items()
        ]
        stage_rows.append(["wall time of enrich_batch", f"{total:.3f}", "100%"])
        print(table(["stage", "seconds", "of wall time"], stage_rows))
        print("\nLinks written per pass: " + ", ".join(f"{k} {v}" for k, v in links.items()))
    finally:
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
