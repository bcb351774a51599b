"""Drift between the graph (source of truth) and the vector collection: detect → repair.

Detection reads both stores completely, in bounded pages on each side, and compares them by
id *and* content:

* the graph is walked in node-id ranges (``GraphStore.scan``) reading only the compared
  payload fields (``memory.PAYLOAD_FIELDS``); for every memory we keep only a 16-byte hash of
  those fields as its payload should hold them, and the sha256 of its content (about 100
  bytes per memory, never the memory itself);
* Qdrant is scrolled with those payload keys and the stamps (no vectors) in large pages, and
  each point is checked against that digest as it arrives, then forgotten.

Kinds: ``missing`` (memory with content, no point), ``orphaned`` (point, no memory),
``stale_vector`` (not current by the one rule, ``vector_state``), ``payload_drift`` (the vector
is current but a compared field disagrees with the node: node-only properties and fields
AutoMem never reads back are never drift), and the store-level ``dimension_mismatch`` and
``identity_mismatch`` (the collection's identity record names another embedding). Memory types
in RECALL_EXCLUDED_TYPES are left out of the accounting, as AutoMem does.

Repair reuses the re-embed path for ``missing`` and ``stale_vector`` (same payload merge and
stamps), rewrites drifted payloads from the graph without embedding, and restores orphans into
the graph only when asked. Nothing is ever deleted.

The modules: ``digests`` (what is compared), ``findings`` (the kinds, ``DriftReport``),
``detection`` (``detect``), ``repair`` (``repair_vectors``, ``repair_payloads``,
``recover_orphans``) and ``summary`` (the run's summary).
"""

# Re-exports for the importers outside this package (ops/drift.py, bench); to be replaced by
# imports from the modules above.
from .detection import GRAPH_PAGE, SCROLL_PAGE, detect
from .digests import canonical, expected_payload
from .findings import KINDS, DriftReport
from .repair import RepairResult, recover_orphans, repair_payloads, repair_vectors
from .summary import summarize

__all__ = [
    "GRAPH_PAGE",
    "KINDS",
    "SCROLL_PAGE",
    "DriftReport",
    "RepairResult",
    "canonical",
    "detect",
    "expected_payload",
    "recover_orphans",
    "repair_payloads",
    "repair_vectors",
    "summarize",
]
