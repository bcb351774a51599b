"""Remote embedding providers against their local protocol servers, with per-request latency.

    .venv/bin/python bench/bench_providers.py [--n 1000] [--batch 100] [--latency 0.02] [--repeat 3]

Each provider embeds the same N sample memories in batches of ``--batch`` through
``embed_batches`` (the re-embed job's path), with its default requests in flight (16 for
OpenAI and Voyage, 2 for Ollama). The servers answer after ``--latency`` seconds per request.
Ollama is measured twice: ``/api/embed`` (a batch per request, what we use) and a server without
it, where the provider falls back to ``/api/embeddings`` (one text per request, AutoMem's way).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automem_pipelines.domain.embeddings import (  # noqa: E402
    OllamaProvider,
    OpenAIProvider,
    VoyageProvider,
    embed_batches,
)
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from bench._common import median, table  # noqa: E402
from tests.support.ollama_server import OllamaServer  # noqa: E402
from tests.support.openai_server import OpenAIEmbeddingsServer  # noqa: E402
from tests.support.voyage_server import VoyageEmbeddingsServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    texts = [m["content"] for m in sample_memories(args.n, seed=7)]
    batches = [
        ([str(i) for i in range(s, min(s + args.batch, len(texts)))], texts[s : s + args.batch])
        for s in range(0, len(texts), args.batch)
    ]
    servers = {
        "openai": OpenAIEmbeddingsServer(default_dim=1024).start(),
        "voyage": VoyageEmbeddingsServer().start(),
        "ollama": OllamaServer().start(),
        "ollama-legacy": OllamaServer(legacy_only=True).start(),
    }
    makers = {
        "openai": lambda s: OpenAIProvider(
            "text-embedding-3-small", 1024, "sk-bench", s.base_url, max_concurrency=16
        ),
        "voyage": lambda s: VoyageProvider(
            "voyage-4", 1024, "voyage-test-key", s.base_url, max_concurrency=16
        ),
        "ollama": lambda s: OllamaProvider("nomic-embed-text", 768, s.base_url),
        "ollama-legacy": lambda s: OllamaProvider("nomic-embed-text", 768, s.base_url),
    }
    labels = {
        "openai": "openai /v1/embeddings",
        "voyage": "voyage /v1/embeddings",
        "ollama": "ollama /api/embed",
        "ollama-legacy": "ollama → /api/embeddings fallback",
    }
    rows = []
    try:
        for name, server in servers.items():
            walls, requests = [], 0
            for _ in range(args.repeat):
                server.reset()
                server.state.latency = args.latency
                provider = makers[name](server)
                started = time.perf_counter()
                outcomes = embed_batches(provider, batches)
                walls.append(time.perf_counter() - started)
                assert all(o.error is None for o in outcomes), [
                    o.error for o in outcomes if o.error
                ]
                requests = server.request_count
            wall = median(walls)
            rows.append([labels[name], provider.max_concurrency, requests, wall, args.n / wall])
            print(f"{name}: {wall:.2f}s", file=sys.stderr)
    finally:
        for server in servers.values():
            server.stop()
    print(
        table(
            f"N={args.n} texts, batches of {args.batch}, {args.latency * 1000:.0f} ms per request, "
            f"medians of {args.repeat}",
            ["provider / endpoint", "in flight", "requests", "wall (s)", "texts/s"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
