"""Enrichment of memories, as plain functions, a batch of memories at a time.

For each memory this does what AutoMem's ``enrich_memory`` does (entities, temporal links,
patterns, semantic neighbours, summary, ``metadata.enrichment``, flags, Qdrant payload),
but every stage works on the whole batch: one ``nlp.pipe`` over the texts, one query per
edge type (``UNWIND``), one batched neighbour search and one batched payload update.

Differences from AutoMem, on purpose:

* Idempotent graph writes: ``PRECEDED_BY.count`` is 1 when the edge is created and kept
  after that, and a ``:Pattern``'s ``observations``/``confidence`` grow only when a memory
  links to it for the first time, so enriching twice leaves the same graph (only the
  ``updated_at`` stamps move).
* The pattern type of a memory is its stored ``type`` (the store classified it when it was
  written); there is no LLM classifier here. The ``EXEMPLIFIES`` confidence is the memory's
  stored ``confidence``.
* Failures are per memory: a memory that cannot be enriched gets ``enrichment_attempts``,
  ``enrichment_error`` and a ``enrichment_retry_at`` backoff; after ``max_attempts`` it is
  marked ``enrichment_failed`` and left alone until a forced reprocess. Store outages are
  not per-memory failures: they propagate (the job's RetryPolicy retries the batch).

The modules, in the order a batch uses them:

* ``selection``: which memories wait (the sensor's candidates, the status count), shared ids;
* ``model``: options, the memories in flight (``Work``), ``BatchResult``, attempt properties;
* ``lookups``: entity extraction, temporal, pattern and semantic-neighbour reads;
* ``links``: the edge writes, and ``link_pending`` (the late semantic step);
* ``batch``: ``enrich_batch``, the node updates;
* ``outcomes``: failures recorded on the nodes, the run's summary;
* ``writes``: the batched write that isolates a refused row.
"""

# Re-exports for the importers outside this package (ops, sensors, resources, status); to be
# replaced by imports from the modules above.
from .batch import enrich_batch
from .links import link_pending
from .model import BatchResult, EnrichmentOptions
from .outcomes import summarize_batches
from .selection import Candidate, count_awaiting, find_candidates

__all__ = [
    "BatchResult",
    "Candidate",
    "EnrichmentOptions",
    "count_awaiting",
    "enrich_batch",
    "find_candidates",
    "link_pending",
    "summarize_batches",
]
