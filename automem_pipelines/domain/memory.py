"""AutoMem's :Memory data model, as the reference service stores it.

Graph nodes keep ``metadata`` as a JSON string and ``tags``/``tag_prefixes`` as native lists;
Qdrant payloads hold the same fields with ``metadata`` as an object. Helpers here convert
between the two without losing any field either side has.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MEMORY_TYPES = ("Decision", "Pattern", "Preference", "Style", "Habit", "Insight", "Context")
# AutoMem's defaults when a node lacks the field (reembed row normalisation).
DEFAULT_IMPORTANCE = 0.5
DEFAULT_TYPE = "Context"
DEFAULT_CONFIDENCE = 0.6
# AutoMem's RECALL_EXCLUDED_TYPES default: the consolidation's pattern summaries are not memories
# to recall, so drift, enrichment and the counts leave them out too.
DEFAULT_RECALL_EXCLUDED_TYPES = ("MetaPattern",)

# Keys we add to a point's payload to record what its vector was made from. The same facts
# also go into one string, `embedding_stamp`, so the incremental check reads one key per point.
STAMP_KEYS = (
    "content_hash",
    "embedding_provider",
    "embedding_model",
    "embedding_dim",
    "embedded_at",
    "embedding_stamp",
)
CHECK_KEY = "embedding_stamp"
# Node-only flag: enriched while it had no current vector; its SIMILAR_TO links are made once
# a re-embed or a sync repair has written its vector.
SIMILAR_PENDING = "enrichment_similar_pending"


# In place of a content hash: "this vector was made from the point's own payload content"
# (an adopted AutoMem point; the payload content is what AutoMem embedded). One stamp for many
# points, so adoption is one payload write per batch, not one per point.
ADOPTED_CONTENT = "payload-content"


def stamp_string(hash_of_content: str, provider: str, model: str, dim: int) -> str:
    return f"{provider}|{model}|{dim}|{hash_of_content}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


def content_hash(content: str) -> str:
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def id_problem(value: Any) -> str | None:
    """Why a node's id cannot be its point's id, or None when it can. Point id = memory id, and
    Qdrant spells UUIDs lowercase with hyphens (AutoMem's ids are ``str(uuid4())``): any other
    value or spelling would never match its point again."""
    if value is None:
        return "no id"
    if not isinstance(value, str):
        return f"id is a {type(value).__name__}, not a UUID string"
    if _CANONICAL_UUID.fullmatch(value):  # the common case, without parsing
        return None
    try:
        canonical = str(uuid.UUID(value))
    except ValueError:
        return "id is not a UUID"
    return None if canonical == value else "id is not in the lowercase hyphenated UUID form"


def shown_id(value: Any) -> str:
    """An id as reports show it (a node without id, or a non-string id, included)."""
    return (
        "<node without id>" if value is None else value if isinstance(value, str) else repr(value)
    )


def split_usable_ids(ids: Iterable[Any]) -> tuple[list[str], list[str], list[str]]:
    """(usable ids in order, invalid ones as reports show them, ids several nodes share).
    A shared id is not usable either: which node would its point belong to?"""
    seen: Counter[str] = Counter()
    order: list[str] = []
    invalid: list[str] = []
    for value in ids:
        if id_problem(value) is not None:
            invalid.append(shown_id(value))
            continue
        if value not in seen:
            order.append(value)
        seen[value] += 1
    shared = [mid for mid in order if seen[mid] > 1]
    if shared:
        order = [mid for mid in order if seen[mid] == 1]
    return order, invalid, shared


def has_content(content: Any) -> bool:
    return isinstance(content, str) and content.strip() != ""


def parse_metadata(value: Any) -> dict[str, Any]:
    """Graph metadata (JSON string, dict or junk) → dict, never losing what was there."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return {"_raw_metadata": value}
        return parsed if isinstance(parsed, dict) else {"_raw_metadata": parsed}
    return {"_raw_metadata": value}


def dump_metadata(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def parse_tags(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = [t for t in value.split(",")]
        value = parsed if isinstance(parsed, list) else [parsed]
    if not isinstance(value, (list, tuple)):
        value = [value]
    return [str(t).strip() for t in value if str(t).strip()]


def tag_prefixes(tags: list[str]) -> list[str]:
    """AutoMem's prefixes: lowercased, split on ':' or '/', every leading run rejoined with ':'."""
    seen: dict[str, None] = {}
    for tag in tags:
        parts = [p for p in tag.lower().replace("/", ":").split(":") if p]
        for i in range(1, len(parts) + 1):
            seen[":".join(parts[:i])] = None
    return list(seen)


# -- what a point's payload mirrors of its node -------------------------------------------------
# Declared once, with the reason for each field (reference §3 and §3b). A point's payload holds
# these fields of its node and nothing else of it; node-only properties (processed, enriched,
# enriched_at, summary, archived_at, our enrichment bookkeeping, ...) never reach a payload.
#
# compared=True: AutoMem reads the field back from the payload (recall filters, scoring, recall
# results), so a payload that disagrees with its node changes what AutoMem answers: that is
# payload drift, and the sync repairs it.
# compared=False: AutoMem writes the field into payloads but never reads it back, and its own
# code lets the copy lag behind the node; we copy it whenever we write a point, and a lagging
# copy is not drift.
@dataclass(frozen=True)
class PayloadField:
    name: str
    compared: bool
    reason: str


PAYLOAD_FIELDS = (
    PayloadField("content", True, "the embedded text; recall returns it"),
    PayloadField("tags", True, "recall's tag filter (MatchAny/MatchValue)"),
    PayloadField("tag_prefixes", True, "recall's prefix tag filter"),
    PayloadField("importance", True, "recall results; tag-only scrolls score by it"),
    PayloadField("timestamp", True, "recall results"),
    PayloadField("type", True, "the RECALL_EXCLUDED_TYPES filter; recall results"),
    PayloadField("confidence", True, "recall results"),
    PayloadField("updated_at", True, "recall results"),
    PayloadField("metadata", True, "recall results (an object here, a JSON string on the node)"),
    PayloadField("archived", True, "tag-only scrolls skip points whose payload has it truthy"),
    PayloadField(
        "last_accessed",
        False,
        "volatile: AutoMem's /recall updates it on the node only, and recall shows the payload "
        "copy without filtering or scoring on it; comparing it would flag every recalled memory",
    ),
    PayloadField(
        "t_valid",
        False,
        "written by AutoMem's store path, omitted by its embedding worker, never read back",
    ),
    PayloadField("t_invalid", False, "as t_valid"),
    PayloadField(
        "relevance_score",
        False,
        "copied by AutoMem's embedding worker; decay "
        "consolidation updates the node only; never read back",
    ),
)
MIRRORED_FIELDS = tuple(f.name for f in PAYLOAD_FIELDS)
COMPARED_FIELDS = tuple(f.name for f in PAYLOAD_FIELDS if f.compared)


def payload_from_node(props: dict[str, Any]) -> dict[str, Any]:
    """The node's mirrored fields as payload fields, normalised the way AutoMem reads them
    (tags a list, metadata an object, AutoMem's defaults where the node lacks a field)."""
    payload = {k: props[k] for k in MIRRORED_FIELDS if props.get(k) is not None}
    payload["tags"] = parse_tags(props.get("tags"))
    payload["metadata"] = parse_metadata(props.get("metadata"))
    if props.get("tag_prefixes") is None:
        payload["tag_prefixes"] = tag_prefixes(payload["tags"])
    else:
        payload["tag_prefixes"] = parse_tags(props.get("tag_prefixes"))
    if props.get("importance") is None:
        payload["importance"] = DEFAULT_IMPORTANCE
    if props.get("type") is None:
        payload["type"] = DEFAULT_TYPE
    if props.get("confidence") is None:
        payload["confidence"] = DEFAULT_CONFIDENCE
    return payload


def mirror_of(changed: dict[str, Any]) -> dict[str, Any]:
    """The payload update for node properties a job has just changed: exactly the mirrored
    ones among them, normalised as ``payload_from_node`` writes them."""
    full = payload_from_node(changed)
    return {k: full[k] for k in changed if k in MIRRORED_FIELDS and k in full}


def merged_payload(
    existing: dict[str, Any] | None, node_props: dict[str, Any], stamps: dict[str, Any]
) -> dict[str, Any]:
    """Existing payload, overlaid with the node's properties, plus the embedding stamps.

    A field that only the point had survives; a field both have takes the graph's value.
    """
    payload = dict(existing or {})
    payload.update(payload_from_node(node_props))
    payload.update(stamps)
    return payload


def adoption_stamps(provider: str, model: str, dim: int) -> dict[str, Any]:
    """The stamps of an adopted point: the model that made it, bound to its payload content."""
    return {
        "embedding_provider": provider,
        "embedding_model": model,
        "embedding_dim": dim,
        "embedded_at": utc_now_iso(),
        CHECK_KEY: stamp_string(ADOPTED_CONTENT, provider, model, dim),
    }


def make_stamps(hash_of_content: str, provider: str, model: str, dim: int) -> dict[str, Any]:
    return {
        "content_hash": hash_of_content,
        "embedding_provider": provider,
        "embedding_model": model,
        "embedding_dim": dim,
        "embedded_at": utc_now_iso(),
        CHECK_KEY: stamp_string(hash_of_content, provider, model, dim),
    }


def node_props_for_write(memory: dict[str, Any]) -> dict[str, Any]:
    """A memory record (payload-like or imported) → graph properties in AutoMem's shape."""
    props = {k: v for k, v in memory.items() if v is not None and k not in STAMP_KEYS}
    tags = parse_tags(memory.get("tags"))
    props["tags"] = tags
    props["tag_prefixes"] = (
        parse_tags(memory["tag_prefixes"]) if memory.get("tag_prefixes") else tag_prefixes(tags)
    )
    props["metadata"] = dump_metadata(parse_metadata(memory.get("metadata")))
    for key, value in list(props.items()):
        if isinstance(value, dict):  # FalkorDB properties cannot be maps
            props[key] = json.dumps(value, sort_keys=True, default=str)
    return props
