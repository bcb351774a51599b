"""Dagster resources: one per external system, built from Settings in one place."""

from .embeddings import EmbeddingsResource
from .falkordb import FalkorDBResource
from .qdrant import QdrantResource

__all__ = ["EmbeddingsResource", "FalkorDBResource", "QdrantResource"]
