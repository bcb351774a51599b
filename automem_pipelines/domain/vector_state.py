"""The one rule for "is this point's vector current for this memory".

Re-embed selection, drift detection, enrichment's neighbour search and the API's health all
ask this module, and nothing else decides it.

* A point stamped by us (``embedding_stamp``, or the older separate stamp keys) is current
  when the stamp names the configured provider, model and dimension and the hash of the
  memory's present content.
* A point without stamps (AutoMem's own, or any other writer's) cannot say which model made
  it. It is *adoptable* when its payload ``content`` is the memory's content (AutoMem embeds
  exactly that text) **and** the collection's embedding identity is known to be the
  configured one (``trust_unstamped``; see ``identity.py``, which proves it by embedding a
  small sample). Adoptable points count as current; re-embed writes their stamps without
  calling the provider.
  Adoption stamps the point with the model and ``ADOPTED_CONTENT`` in place of a content hash:
  the vector stays current as long as the payload content is the memory's content.
* Anything else is stale: it needs a new vector.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from typing import Any

from .memory import ADOPTED_CONTENT, CHECK_KEY, content_hash, stamp_string

# The payload keys the rule reads (the incremental check first reads CHECK_KEY alone).
LEGACY_STAMP_KEYS = ("content_hash", "embedding_provider", "embedding_model", "embedding_dim")
STATE_KEYS = (CHECK_KEY, *LEGACY_STAMP_KEYS, "content")


@dataclass(frozen=True)
class EmbeddingIdentity:
    """Which embedding made (or is to make) a collection's vectors."""

    provider: str
    model: str
    dim: int

    def label(self) -> str:
        return f"{self.provider}:{self.model} ({self.dim}-d)"

    def as_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "dim": self.dim}

    @classmethod
    def from_dict(cls, value: Any) -> EmbeddingIdentity | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(str(value["provider"]), str(value["model"]), int(value["dim"]))
        except (KeyError, TypeError, ValueError):
            return None

    @classmethod
    def of(cls, provider: Any) -> EmbeddingIdentity:
        """The identity of an embedding provider object."""
        return cls(provider.provider, provider.model, provider.dim)


class VectorState(str, Enum):
    MISSING = "missing"  # no point
    CURRENT = "current"  # stamped by us for this content and the configured identity
    ADOPTABLE = "adoptable"  # unstamped, same content, collection identity proven
    STALE = "stale"  # needs a new vector


def needs_content(payload: dict[str, Any]) -> bool:
    """The rule needs this point's payload content too (unstamped, or adopted)."""
    stamp = payload.get(CHECK_KEY)
    return stamp is None or (isinstance(stamp, str) and stamp.endswith("|" + ADOPTED_CONTENT))


def is_stamped(payload: dict[str, Any]) -> bool:
    return CHECK_KEY in payload or any(k in payload for k in LEGACY_STAMP_KEYS)


def stamp_identity(payload: dict[str, Any]) -> EmbeddingIdentity | None:
    """The identity a stamped point names (None when unstamped or unreadable)."""
    stamp = payload.get(CHECK_KEY)
    if isinstance(stamp, str) and stamp.count("|") >= 3:
        provider, model, dim, _ = stamp.split("|", 3)
        return EmbeddingIdentity.from_dict({"provider": provider, "model": model, "dim": dim})
    if any(k in payload for k in LEGACY_STAMP_KEYS):
        return EmbeddingIdentity.from_dict(
            {
                "provider": payload.get("embedding_provider"),
                "model": payload.get("embedding_model"),
                "dim": payload.get("embedding_dim"),
            }
        )
    return None


def payload_content_hash(payload: dict[str, Any]) -> str | None:
    text = payload.get("content")
    return content_hash(text) if isinstance(text, str) else None


def vector_state(
    payload: dict[str, Any] | None,
    hash_of_content: str,
    identity: EmbeddingIdentity,
    trust_unstamped: bool,
) -> VectorState:
    """The state of a memory's point. ``hash_of_content`` is ``memory.content_hash`` of the
    memory's present content; ``payload`` holds at least ``STATE_KEYS`` (or is None)."""
    if payload is None:
        return VectorState.MISSING
    if CHECK_KEY in payload:
        stamp = payload[CHECK_KEY]
        if stamp == stamp_string(ADOPTED_CONTENT, identity.provider, identity.model, identity.dim):
            # adopted: the vector is the payload content's, so it must still be the node's
            same = payload_content_hash(payload) == hash_of_content
            return VectorState.CURRENT if same else VectorState.STALE
        expected = stamp_string(hash_of_content, identity.provider, identity.model, identity.dim)
        return VectorState.CURRENT if stamp == expected else VectorState.STALE
    if any(k in payload for k in LEGACY_STAMP_KEYS):
        current = (
            payload.get("content_hash") == hash_of_content
            and payload.get("embedding_provider") == identity.provider
            and payload.get("embedding_model") == identity.model
            and payload.get("embedding_dim") == identity.dim
        )
        return VectorState.CURRENT if current else VectorState.STALE
    if trust_unstamped and payload_content_hash(payload) == hash_of_content:
        return VectorState.ADOPTABLE
    return VectorState.STALE


def sha256_hash(digest: bytes) -> str:
    """``memory.content_hash`` spelled from a raw sha256 digest (drift keeps raw digests)."""
    return "sha256:" + digest.hex()


def raw_content_digest(content: str) -> bytes:
    return hashlib.sha256(content.encode("utf-8")).digest()
