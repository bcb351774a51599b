"""The "remote models" the test servers play, in one place.

A test server has no real model behind it; what it answers must still behave like one:
related texts close, the same model giving the same vectors again, and another model giving
vectors far from them. Every server (OpenAI, Voyage, Ollama) computes its vectors here:

    project(texts, dim, seed) = normalise(static_model(texts) @ P),
    P = numpy.random.default_rng(seed).standard_normal((256, dim)).astype(float32)

with the project's shipped 256-d static model. That is how the vectors of the AutoMem fixture
store (``tests/fixtures/automem-0.16.1-store``) were made, with seed ``1234 + dim``: the
models AutoMem uses by default (``text-embedding-3-small``, ``voyage-4``, ``nomic-embed-text``)
play that model at any dimension, so a server reproduces AutoMem's stored vectors. Any other
model name gets a seed derived from its name, so "another model of the same dimension" gives
vectors far from those (a random projection per model).
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Mapping, Sequence

import numpy as np

from automem_pipelines.domain.embeddings import LocalStaticProvider, local_provider


@functools.cache
def static_model() -> LocalStaticProvider:
    """The shipped model, loaded once for the test servers that answer with its vectors."""
    return local_provider()


FIXTURE_SEED_BASE = 1234
# The models AutoMem's defaults name; each plays the fixture's model (seed 1234 + dim).
FIXTURE_MODELS = frozenset({"text-embedding-3-small", "voyage-4", "nomic-embed-text"})

_lock = threading.Lock()
_projections: dict[tuple[int, int], np.ndarray] = {}


def _projection(seed: int, dim: int) -> np.ndarray:
    key = (seed, dim)
    with _lock:
        p = _projections.get(key)
        if p is None:
            p = np.random.default_rng(seed).standard_normal((256, dim)).astype(np.float32)
            _projections[key] = p
        return p


def project(texts: Sequence[str], dim: int, seed: int) -> np.ndarray:
    """The static model's vectors of ``texts`` projected to ``dim`` with seed ``seed``,
    L2-normalised, float32 (little-endian), one row per text."""
    base = static_model().embed(list(texts)).vectors
    out = base @ _projection(seed, dim)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms == 0, 1, norms)).astype("<f4")


def name_seed(model: str) -> int:
    """A stable seed for a model name (not Python's per-process ``hash``)."""
    return int.from_bytes(hashlib.sha256(model.encode()).digest()[:4], "little")


def model_seed(model: str, dim: int, seeds: Mapping[str, int] | None = None) -> int:
    """The seed a server uses for ``model`` at ``dim``: an explicit mapping entry first, then
    the fixture's rule for AutoMem's default models, then one derived from the name."""
    if seeds and model in seeds:
        return seeds[model]
    if model in FIXTURE_MODELS:
        return FIXTURE_SEED_BASE + dim
    return name_seed(model) + dim


def model_vectors(
    texts: Sequence[str], model: str, dim: int, seeds: Mapping[str, int] | None = None
) -> np.ndarray:
    return project(texts, dim, model_seed(model, dim, seeds))
