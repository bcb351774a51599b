"""Embedding many batches: several requests in flight, and a batch the provider refuses
split until only the texts it refuses on their own fail."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .base import EmbeddedBatch, EmbeddingProvider, EmbeddingRejectedError


@dataclass
class BatchOutcome:
    index: int
    ids: list[str]
    result: EmbeddedBatch | None
    error: str | None
    rejected: bool = False  # the provider refused this batch itself (EmbeddingRejectedError)
    requests: int = 1  # requests it took, the refused halves it was split from included


def embed_batches(
    provider: EmbeddingProvider, batches: Sequence[tuple[list[str], list[str]]]
) -> list[BatchOutcome]:
    """Embed (ids, texts) batches, up to ``provider.max_concurrency`` in flight.

    A batch that fails is returned with its error; the other batches go on. A batch the
    provider refuses (a poisoned text) is split in halves, again and again, until only the
    memories it refuses on their own fail: one bad text costs about 2·log2(batch) requests,
    never its neighbours. Failures after retries (429s, 5xx, timeouts) are not split.
    """

    def run(job: tuple[list[str], list[str]]) -> BatchOutcome:
        ids, texts = job
        try:
            return BatchOutcome(0, ids, provider.embed(texts), None)
        except Exception as exc:  # noqa: BLE001 - a failed batch is counted, not fatal
            return BatchOutcome(
                0,
                ids,
                None,
                f"{type(exc).__name__}: {exc}",
                rejected=isinstance(exc, EmbeddingRejectedError),
            )

    def run_all(jobs: list[tuple[list[str], list[str]]]) -> list[BatchOutcome]:
        workers = max(1, min(provider.max_concurrency, len(jobs)))
        if workers == 1:
            return [run(j) for j in jobs]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
            return list(pool.map(run, jobs))

    outcomes = run_all([(list(ids), list(texts)) for ids, texts in batches])
    for i, outcome in enumerate(outcomes):
        outcome.index = i
    final: dict[int, list[BatchOutcome]] = {i: [o] for i, o in enumerate(outcomes)}
    while True:
        splits = [
            (i, o) for i, parts in final.items() for o in parts if o.rejected and len(o.ids) > 1
        ]
        if not splits:
            break
        jobs, owners = [], []
        for i, o in splits:
            texts = dict(zip(batches[i][0], batches[i][1]))
            half = len(o.ids) // 2
            for part in (o.ids[:half], o.ids[half:]):
                jobs.append((part, [texts[m] for m in part]))
                owners.append((i, o))
        results = run_all(jobs)
        for (i, parent), child in zip(owners, results):
            child.index = i
            place = next((k for k, o in enumerate(final[i]) if o is parent), None)
            if place is not None:  # the first half takes the parent's place and requests
                child.requests += parent.requests
                final[i][place] = child
            else:
                final[i].append(child)
    return [o for i in sorted(final) for o in final[i]]
