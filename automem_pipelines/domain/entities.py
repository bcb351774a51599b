"""Entity extraction and summaries, compatible with AutoMem's enrichment results.

Categories and the spaCy label mapping follow AutoMem: PERSON → people, ORG → organizations,
PRODUCT/WORK_OF_ART/LAW → tools, EVENT/GPE/LOC/NORP → concepts, plus always-on patterns
for people, tools and projects. Everything here takes an already parsed spaCy ``Doc`` (or
``None`` in rule-only mode), so a caller can parse thousands of texts with ``nlp.pipe``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

CATEGORIES = ("tools", "projects", "people", "concepts", "organizations")
LABEL_CATEGORY = {
    "PERSON": "people",
    "ORG": "organizations",
    "PRODUCT": "tools",
    "WORK_OF_ART": "tools",
    "LAW": "tools",
    "EVENT": "concepts",
    "GPE": "concepts",
    "LOC": "concepts",
    "NORP": "concepts",
}
SPACY_MAX_WORDS = 6
SUMMARY_MAX_LENGTH = 240

_PEOPLE_AFTER = re.compile(
    r"(?:with|met with|meeting with|talked to|spoke with)\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)?)"
)
_TOOL_PATTERNS = (
    re.compile(r"(?:use|using|deploy|deployed|with|via)\s+([A-Z][\w\-]+)", re.IGNORECASE),
    re.compile(r"([A-Z][\w\-]+)\s+(?:vs|versus|over|instead of)", re.IGNORECASE),
)
_BACKTICKS = re.compile(r"`([^`]+)`")
_PROJECT_CALLED = re.compile(
    r'(?:project|repo|repository)\s+(?:called|named)\s+"([^"]+)"', re.IGNORECASE
)
_PROJECT_QUOTED = re.compile(r'(?:project|repo|repository)\s+"([^"]+)"', re.IGNORECASE)
_PROJECT_TITLE = re.compile(r"Project\s+([A-Z][\w\-]+)")
_PROJECT_SLUG = re.compile(r"(?:in |on )?project:\s+([a-z][a-z0-9\-]+)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")

_LITERALS = {"true", "false", "null", "none", "undefined"}
_CODE_SUFFIXES = (
    "Adapter",
    "Handler",
    "Manager",
    "Service",
    "Controller",
    "Provider",
    "Factory",
    "Builder",
    "Helper",
    "Util",
)
_BAD_FIRST_CHARS = set("-*#>|[]{}()_'\"")
# Words that are never entities on their own, and that spaCy's small model sometimes glues
# to the front of a name at the start of a sentence ("Deployed SuperWhisper" as PERSON).
_STOPWORDS = {
    "the",
    "this",
    "that",
    "these",
    "those",
    "with",
    "from",
    "into",
    "about",
    "after",
    "before",
    "during",
    "every",
    "each",
    "some",
    "many",
    "most",
    "other",
    "project",
    "team",
    "today",
    "tomorrow",
    "yesterday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "notes",
    "nobody",
    "everyone",
    "someone",
    "they",
    "there",
    "here",
}
_LEADING_VERBS = {
    "deployed",
    "deploy",
    "met",
    "chose",
    "decided",
    "use",
    "used",
    "using",
    "started",
    "keep",
    "prefer",
    "prefers",
    "write",
    "back",
    "caching",
    "moved",
    "agreed",
    "asked",
}


def slugify(value: str) -> str:
    return _NON_ALNUM.sub("-", value.lower()).strip("-")


def is_valid_entity(value: str, allow_lower: bool = False, max_words: int | None = None) -> bool:
    """AutoMem's heuristic filter: drop short, generic, code-like or lowercase fragments."""
    cleaned = (value or "").strip()
    if len(cleaned) < 3:
        return False
    if max_words is not None and len(cleaned.split()) > max_words:
        return False
    lowered = cleaned.lower()
    if lowered in _STOPWORDS or lowered in _LITERALS:
        return False
    if not any(ch.isalpha() for ch in cleaned):
        return False
    if not allow_lower and cleaned[0].islower() and not cleaned.isupper():
        return False
    if cleaned[0] in _BAD_FIRST_CHARS:
        return False
    if cleaned.endswith(_CODE_SUFFIXES):
        return False
    if ("_" in cleaned and cleaned.isupper()) or cleaned.endswith(":"):
        return False
    return True


def _clean_span(value: str) -> str:
    """Trim punctuation and possessives; a span that swallowed a leading verb
    ("Deployed SuperWhisper" as PERSON) is mislabelled as a whole, so it is dropped."""
    text = value.strip().strip(".,;:!?")
    if text.endswith(("'s", "’s")):
        text = text[:-2]
    words = text.split()
    if words and words[0].lower() in _LEADING_VERBS:
        return ""
    return " ".join(words)


def _accept(category: str, value: str) -> bool:
    """Final quality gate (AutoMem runs a second validator here)."""
    if category != "projects" and value.lower() in _LEADING_VERBS:
        return False
    return slugify(value) != ""


def extract_entities(text: str, doc: Any | None) -> dict[str, list[str]]:
    """Entities of one text: spaCy entities from ``doc`` (None in rule-only mode) plus the
    rule-based patterns. Returns every category, each sorted (possibly empty)."""
    found: dict[str, set[str]] = {c: set() for c in CATEGORIES}
    text = (text or "").strip()
    if not text:
        return {c: [] for c in CATEGORIES}
    if doc is not None:
        for ent in doc.ents:
            category = LABEL_CATEGORY.get(ent.label_)
            if category is None:
                continue
            value = _clean_span(ent.text)
            if is_valid_entity(value, max_words=SPACY_MAX_WORDS):
                found[category].add(value)
    for match in _PEOPLE_AFTER.findall(text):
        found["people"].add(match.strip())
    for pattern in _TOOL_PATTERNS:
        for match in pattern.findall(text):
            if is_valid_entity(match.strip()):
                found["tools"].add(match.strip())
    for pattern in (_BACKTICKS, _PROJECT_CALLED, _PROJECT_QUOTED):
        for match in pattern.findall(text):
            if is_valid_entity(match.strip(), max_words=4):
                found["projects"].add(match.strip())
    for match in _PROJECT_TITLE.findall(text):
        if is_valid_entity(match.strip()):
            found["projects"].add(match.strip())
    for match in _PROJECT_SLUG.findall(text):
        if is_valid_entity(match.strip(), allow_lower=True):
            found["projects"].add(match.strip())
    cleaned = {c: {v for v in values if _accept(c, v)} for c, values in found.items()}
    cleaned["tools"] -= cleaned["people"]
    return {c: sorted(values) for c, values in cleaned.items()}


def entity_tags(entities: dict[str, Iterable[str]]) -> list[str]:
    """Sorted ``entity:<category>:<slug>`` tags."""
    tags = {
        f"entity:{category}:{slug}"
        for category, values in entities.items()
        for value in values
        if (slug := slugify(value))
    }
    return sorted(tags)


def summarize(
    content: Any, existing: str | None = None, max_length: int = SUMMARY_MAX_LENGTH
) -> str | None:
    """First sentence, at most ``max_length`` characters, cut at a word boundary.

    ``existing`` is returned unchanged when it equals the new summary (AutoMem keeps it).
    """
    text = content.strip() if isinstance(content, str) else ""
    if not text:
        return existing
    summary = _SENTENCE_END.split(text, maxsplit=1)[0].strip()
    if len(summary) > max_length:
        cut = summary[:max_length].rsplit(" ", 1)[0].strip()
        summary = cut or summary[:max_length].strip()
    if existing and existing.strip() == summary:
        return existing
    return summary
