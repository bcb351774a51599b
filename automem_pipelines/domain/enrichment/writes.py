"""Batched graph writes that isolate the one memory a write refuses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...stores.graph import GraphStore, GraphUnavailableError
from .model import error_text


def write_rows(
    graph: GraphStore,
    cypher: str,
    rows: list[dict[str, Any]],
    params: dict[str, Any],
    owner: Callable[[dict[str, Any]], str],
    failures: dict[str, str],
) -> list[dict[str, Any]]:
    """Run one UNWIND $rows write; if the batch is refused (not an outage), write row by row
    so one bad memory cannot fail the others. Returns the rows written; the error of each
    row refused is put in ``failures`` under its owner's id (the first error per id kept)."""
    if not rows:
        return []
    try:
        graph.query(cypher, {**params, "rows": rows})
        return rows
    except GraphUnavailableError:
        raise
    except Exception:  # noqa: BLE001 - isolate the culprit below
        pass
    written = []
    for row in rows:
        try:
            graph.query(cypher, {**params, "rows": [row]})
            written.append(row)
        except GraphUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            failures.setdefault(owner(row), error_text(exc))
    return written
