"""The project's static-model reader computes exactly model2vec's vectors for the shipped model."""

import model2vec  # dev extra: the reference implementation of the format
import numpy as np
import pytest

from automem_pipelines.domain.embeddings import LOCAL_MODEL_DIR, local_provider
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.static_model import StaticModel


def texts() -> list[str]:
    sample = [m["content"] for m in sample_memories(400, seed=3) if m.get("content")]
    return sample + [
        "",  # no token at all → zero row in both
        "   ",
        "Ünïcødé — ça marche? 東京 🚀 naïve café",
        "word " * 3000,  # past max_length: both cut at the same place
        "x" * 20_000,
        "SuperWhisper and Launchpad, deployed on 2026-11-25 at 14:00 UTC.",
    ]


def test_same_vectors_as_model2vec():
    ours = StaticModel(LOCAL_MODEL_DIR)
    theirs = model2vec.StaticModel.from_pretrained(str(LOCAL_MODEL_DIR))
    sample = texts()
    a = ours.encode(sample)
    b = theirs.encode(sample, show_progress_bar=False, use_multiprocessing=False)
    assert a.dtype == b.dtype and a.shape == b.shape == (len(sample), 256)
    assert np.array_equal(a, b)
    # batching does not change a row
    assert np.array_equal(ours.encode(sample[:1]), a[:1])
    assert np.array_equal(ours.encode(sample[-7:]), a[-7:])


def test_provider_vectors_are_unit_length_and_semantic():
    provider = local_provider()
    vecs = provider.embed(
        ["The cat sat on the mat.", "A kitten rested on the rug.", "Quarterly tax filing deadline"]
    ).vectors
    assert vecs.shape == (3, provider.dim) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-2)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]


def test_unsupported_layout_is_refused(tmp_path):
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((LOCAL_MODEL_DIR / name).read_bytes())
    from safetensors.numpy import save_file

    save_file(
        {"embeddings": np.zeros((3, 4), np.float16), "mapping": np.zeros(3, np.int64)},
        str(tmp_path / "model.safetensors"),
    )
    with pytest.raises(ValueError, match="expected one 'embeddings' table"):
        StaticModel(tmp_path)
