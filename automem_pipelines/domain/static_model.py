"""A small reader for static (model2vec-format) embedding models.

The shipped model is a token-embedding table (model.safetensors), a tokenizer (tokenizer.json)
and a config.json. Embedding a text = tokenize it (no special tokens, unknown tokens dropped),
average the rows of its tokens, normalise. This reads the same files and computes the same
vectors as ``model2vec.StaticModel`` (tests/unit/test_static_model.py compares them), without
importing model2vec and what it pulls in: every run worker loads the model once, and this
loads in ~0.05 s where ``StaticModel.from_pretrained`` takes ~0.3 s.

Only the layout the project ships is accepted (plain ``embeddings`` table, mean pooling);
anything else raises ``ValueError`` rather than computing different vectors.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ENCODE_BATCH = 1024  # sentences per tokenizer call, as model2vec


class StaticModel:
    def __init__(self, model_dir: Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        model_dir = Path(model_dir)
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("pooling", "mean") != "mean":
            raise ValueError(f"{model_dir}: pooling {config.get('pooling')!r} is not supported")
        tensors = load_file(str(model_dir / "model.safetensors"))
        if set(tensors) != {"embeddings"}:
            raise ValueError(
                f"{model_dir}: expected one 'embeddings' table, found {sorted(tensors)}"
            )
        self.embeddings: np.ndarray = tensors["embeddings"]
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        vocab = self.tokenizer.get_vocab()
        if len(vocab) != len(self.embeddings):
            raise ValueError(
                f"{model_dir}: {len(vocab)} tokens but {len(self.embeddings)} embedding rows"
            )
        self.normalize = bool(config.get("normalize", False))
        self.max_length: int | None = config.get("max_length", 512)
        # Texts are cut to max_length × the median token length (in characters) before
        # tokenizing, then the tokenizer truncates to max_length tokens, as model2vec does.
        self.median_token_length = int(np.median([len(token) for token in vocab]))
        unk = getattr(self.tokenizer.model, "unk_token", None)
        self.unk_id = self.tokenizer.token_to_id(unk) if unk is not None else None
        self.tokenizer.no_padding()
        if self.max_length is None:
            self.tokenizer.no_truncation()
        else:
            self.tokenizer.enable_truncation(self.max_length)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """One row per text, in the table's dtype (a text with no known token → zeros)."""
        if self.max_length is not None:
            cut = self.max_length * self.median_token_length
            texts = [text[:cut] for text in texts]
        parts = [
            self._encode_batch(texts[i : i + ENCODE_BATCH])
            for i in range(0, len(texts), ENCODE_BATCH)
        ]
        return (
            np.concatenate(parts, axis=0)
            if parts
            else np.zeros((0, self.dim), self.embeddings.dtype)
        )

    def _encode_batch(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self.tokenizer.encode_batch_fast(list(texts), add_special_tokens=False)
        ids = [[t for t in e.ids if t != self.unk_id] for e in encodings]
        out = np.zeros((len(ids), self.dim), dtype=self.embeddings.dtype)
        by_length: dict[int, list[int]] = defaultdict(list)  # same-length rows pool together
        for row, token_ids in enumerate(ids):
            if token_ids:
                by_length[len(token_ids)].append(row)
        for rows in by_length.values():
            matrix = np.array([ids[r] for r in rows], dtype=np.int64)
            out[rows] = self.embeddings[matrix].mean(axis=1)
        if self.normalize:
            wide = out.astype(np.float32)
            norms = np.linalg.norm(wide, axis=1, keepdims=True) + 1e-32
            return (wide / norms).astype(out.dtype)
        return out
