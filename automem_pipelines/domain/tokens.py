"""Counting the tokens a provider will bill, offline.

OpenAI's embedding models (text-embedding-3-*, text-embedding-ada-002) bill cl100k_base
tokens: counted exactly with the BPE file the ``bpe-openai`` package ships (no download, no
network). No other provider's tokenizer can run offline here (Voyage's and Ollama's models
publish theirs only on model hubs; the local static model is free): their count is an
estimate, one token per ``CHARS_PER_TOKEN`` characters of each text, labelled so.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

CHARS_PER_TOKEN = 4  # the usual rule of thumb for English text
CL100K_MODELS = ("text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002")


@lru_cache(maxsize=4)
def _encoding(name: str):
    import bpe_openai

    return bpe_openai.get_encoding(name)


@dataclass(frozen=True)
class TokenCounter:
    """How a model family's tokens are counted: ``encoding`` (exact) or an estimate."""

    encoding: str | None  # a BPE encoding name when exact, else None

    @property
    def exact(self) -> bool:
        return self.encoding is not None

    @property
    def method(self) -> str:
        if self.encoding is not None:
            return f"exact ({self.encoding}, offline)"
        return f"estimate (characters / {CHARS_PER_TOKEN}: no offline tokenizer for this model)"

    def count_one(self, text: str) -> int:
        if self.encoding is not None:
            return len(_encoding(self.encoding).encode(text))
        return math.ceil(len(text) / CHARS_PER_TOKEN)

    def count(self, texts: Iterable[str]) -> int:
        if self.encoding is not None:
            encode = _encoding(self.encoding).encode
            return sum(len(encode(t)) for t in texts)
        return sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts)


def counter_for(provider: str, model: str) -> TokenCounter:
    """The token counter of the model family: exact for OpenAI's cl100k_base models
    (also behind an OpenAI-compatible endpoint, by their name), an estimate otherwise."""
    if provider == "openai" and model.rsplit("/", 1)[-1] in CL100K_MODELS:
        return TokenCounter("cl100k_base")
    return TokenCounter(None)
