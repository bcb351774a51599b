"""AutoMem's :Memory data model, as the reference service stores it.

Graph nodes keep ``metadata`` as a JSON string and ``tags``/``tag_prefixes`` as native lists;
Qdrant payloads hold the same fields with ``metadata`` as an object. Helpers here convert
between the two without losing any field either side has.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

MEMORY_TYPES = ("Decision", "Pattern", "Preference", "Style", "Habit", "Insight", "Context")
# AutoMem's defaults when a node lacks the field (reembed row normalisation).
DEFAULT_IMPORTANCE = 0.5
DEFAULT_TYPE = "Context"
DEFAULT_CONFIDENCE = 0.6

# Keys we add to a point's payload to record what its vector was made from. The same facts
# also go into one string, `embedding_stamp`, so the incremental check reads one key per point.
STAMP_KEYS = (
    "content_hash", "embedding_provider", "embedding_model", "embedding_dim", "embedded_at",
    "embedding_stamp",
)  # fmt: skip
CHECK_KEY = "embedding_stamp"


def stamp_string(hash_of_content: str, provider: str, model: str, dim: int) -> str:
    return f"{provider}|{model}|{dim}|{hash_of_content}"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat()


def content_hash(content: str) -> str:
    return "sha256:" + hashlib.sha256(content.encode("utf-8")).hexdigest()


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


def payload_from_node(props: dict[str, Any]) -> dict[str, Any]:
    """Every property of a graph node as payload fields, normalised the way AutoMem reads them."""
    payload = dict(props)
    payload["tags"] = parse_tags(props.get("tags"))
    payload["metadata"] = parse_metadata(props.get("metadata"))
    if props.get("tag_prefixes") is None:
        payload["tag_prefixes"] = tag_prefixes(payload["tags"])
    if props.get("importance") is None:
        payload["importance"] = DEFAULT_IMPORTANCE
    if props.get("type") is None:
        payload["type"] = DEFAULT_TYPE
    if props.get("confidence") is None:
        payload["confidence"] = DEFAULT_CONFIDENCE
    return payload


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


def make_stamps(hash_of_content: str, provider: str, model: str, dim: int) -> dict[str, Any]:
    return {
        "content_hash": hash_of_content,
        "embedding_provider": provider,
        "embedding_model": model,
        "embedding_dim": dim,
        "embedded_at": utc_now_iso(),
        CHECK_KEY: stamp_string(hash_of_content, provider, model, dim),
    }


def stamp_is_current(
    payload: dict[str, Any] | None, content: str, provider: str, model: str, dim: int
) -> bool:
    """True when the point's vector was made by this provider/model/dim from this content."""
    if not payload:
        return False
    if CHECK_KEY in payload:
        return payload[CHECK_KEY] == stamp_string(content_hash(content), provider, model, dim)
    return (
        payload.get("content_hash") == content_hash(content)
        and payload.get("embedding_provider") == provider
        and payload.get("embedding_model") == model
        and payload.get("embedding_dim") == dim
    )


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
