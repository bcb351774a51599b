"""The shipped static model distilled from all-MiniLM-L6-v2 (256-d, CPU, no torch)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..embedding_defaults import LOCAL_MODEL_NAME
from .base import EmbeddedBatch, check_batch

LOCAL_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "minilm-l6-static"


class LocalStaticProvider:
    provider = "local"
    max_concurrency = 1  # CPU-bound; numpy already uses the cores it can

    def __init__(self, model: str = LOCAL_MODEL_NAME, model_dir: Path = LOCAL_MODEL_DIR):
        from ..static_model import StaticModel

        self.model = model
        self._model = StaticModel(model_dir)
        self.dim = self._model.dim

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        return EmbeddedBatch(check_batch(texts, self._model.encode(list(texts)), self.dim))

    def close(self) -> None:
        """Nothing to release: the model is plain arrays in memory."""


def local_provider(model: str = LOCAL_MODEL_NAME) -> LocalStaticProvider:
    """The shipped model, loaded (0.05 s); whoever needs it keeps it (the embeddings resource
    for the length of a run)."""
    return LocalStaticProvider(model)
