"""Canonical digests that drift detection compares: a node's compared payload fields as
its point should hold them, a point's values for the same fields, and content digests."""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from typing import Any

from ..memory import COMPARED_FIELDS, payload_from_node
from ..vector_state import (
    EmbeddingIdentity,
    VectorState,
    raw_content_digest,
    sha256_hash,
    vector_state,
)

_ABSENT = "\x00absent"  # stands for "the point has no such key" in a payload digest


def canonical(value: Any) -> Any:
    """A JSON-able form in which equal payload values are equal: every number a float rounded
    to 15 significant digits (1 == 1.0; a float that went through a text round trip still
    matches), tuples as lists, dict keys as strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        return float(format(number, ".15g")) if math.isfinite(number) else repr(number)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def digest(value: Any) -> bytes:
    text = json.dumps(canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


content_digest = raw_content_digest


def expected_payload(props: dict[str, Any]) -> dict[str, Any]:
    """The compared payload fields a point must carry for this node (memory.PAYLOAD_FIELDS:
    those AutoMem reads back), as ``payload_from_node`` writes them."""
    payload = payload_from_node(props)
    return {k: payload[k] for k in COMPARED_FIELDS if k in payload}


def payload_fields_digest(payload: dict[str, Any]) -> bytes:
    """Digest of the point's values for the compared fields (absent ones included as absent);
    every other key of the payload is ignored."""
    return digest({k: payload.get(k, _ABSENT) for k in COMPARED_FIELDS})


def expected_digest(props: dict[str, Any]) -> bytes:
    expected = expected_payload(props)
    return digest({k: expected.get(k, _ABSENT) for k in COMPARED_FIELDS})


def canonical_id(value: Any) -> str | None:
    """How Qdrant spells a memory id (UUID, lowercase, hyphenated); None if it cannot be a
    point id."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def vector_is_current(
    payload: dict[str, Any],
    content: bytes,
    identity: EmbeddingIdentity,
    trust_unstamped: bool = True,
) -> bool:
    """The one rule (``vector_state``), from a raw content digest: a current or adoptable point
    is current here (an unstamped AutoMem point with the node's content is the collection
    model's vector unless the collection's identity record says otherwise)."""
    state = vector_state(payload, sha256_hash(content), identity, trust_unstamped)
    return state in (VectorState.CURRENT, VectorState.ADOPTABLE)
