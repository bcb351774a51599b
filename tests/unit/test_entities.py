"""Entity extraction with the real spaCy model, slugs, tags and summaries."""

from __future__ import annotations

import pytest

from automem_pipelines.domain.entities import entity_tags, extract_entities, slugify, summarize
from automem_pipelines.domain.nlp import PACKAGED_MODEL, RULE_ONLY, load_entity_model


@pytest.fixture(scope="module")
def model():
    # en_core_web_sm is not installed here: the packaged copy must be picked, never rule-only.
    return load_entity_model("en_core_web_sm")


def entities(model, text: str) -> dict[str, list[str]]:
    return extract_entities(text, model.pipe([text])[0])


def test_model_falls_back_to_the_packaged_spacy_model(model):
    assert model.name == PACKAGED_MODEL
    assert not model.rule_only
    assert (model.name, model.requested) == (PACKAGED_MODEL, "en_core_web_sm")


def test_no_model_at_all_is_rule_only_and_says_so(caplog):
    with caplog.at_level("ERROR"):
        fallback = load_entity_model("no_such_model_xyz", fallback="no_such_fallback_xyz")
    assert fallback.rule_only and fallback.name == RULE_ONLY
    assert [len(p) > 0 for p in fallback.problems] == [True, True]
    assert "RULE-ONLY" in caplog.text
    assert fallback.pipe(["a", "b"]) == [None, None]


def test_automem_sentence(model):
    found = entities(model, "Deployed SuperWhisper with Alice during Project Launchpad review")
    assert "SuperWhisper" in found["tools"]
    assert "Launchpad" in found["projects"]
    assert "Alice" in found["people"]
    assert "Alice" not in found["tools"]  # tools minus people


def test_spacy_labels_map_to_categories(model):
    found = entities(model, "Alice Johnson met Tim Cook of Apple in Paris, France on Monday.")
    assert {"Alice Johnson", "Tim Cook"} <= set(found["people"])
    assert "Apple" in found["organizations"]
    assert {"Paris", "France"} <= set(found["concepts"])
    assert all(v == sorted(v) for v in found.values())


def test_rule_patterns(model):
    found = entities(
        model,
        'Working on the repo called "Hearth" and `quill-cli`; project: nimbus-api. '
        "We use Terraform instead of Pulumi.",
    )
    assert {"Hearth", "nimbus-api"} <= set(found["projects"])
    assert "Terraform" in found["tools"]


def test_rule_only_extraction_without_doc():
    found = extract_entities(
        "Deployed SuperWhisper with Alice during Project Launchpad review", None
    )
    assert found["tools"] == ["SuperWhisper"]
    assert found["projects"] == ["Launchpad"]
    assert found["people"] == ["Alice"]
    assert found["organizations"] == [] and found["concepts"] == []


def test_empty_text_has_every_category_empty(model):
    assert entities(model, "   ") == {
        c: [] for c in ("tools", "projects", "people", "concepts", "organizations")
    }


def test_noise_is_rejected():
    found = extract_entities("Using true with the NULL_VALUE via UserManager over the ab", None)
    assert found["tools"] == []


def test_slugs_and_tags():
    assert slugify("GitHub Actions") == "github-actions"
    assert slugify("  C++ / Rust!! ") == "c-rust"
    assert entity_tags(
        {"tools": ["GitHub Actions", "SuperWhisper"], "people": ["Bob Chen"], "projects": ["!!!"]}
    ) == [
        "entity:people:bob-chen",
        "entity:tools:github-actions",
        "entity:tools:superwhisper",
    ]


def test_summary_is_the_first_sentence():
    assert summarize("Met with Alice. Then lunch!") == "Met with Alice."
    assert summarize("Is it done? Yes.") == "Is it done?"
    assert summarize("No punctuation at all") == "No punctuation at all"
    assert summarize("   ") is None
    assert summarize(None, existing="kept") == "kept"


def test_summary_is_cut_at_a_word_within_240_characters():
    text = ("word " * 100).strip() + "."
    out = summarize(text)
    assert len(out) <= 240 and out.endswith("word") and not out.endswith(" ")
    assert summarize("x" * 300) == "x" * 240  # no space to cut at


def test_identical_existing_summary_is_kept():
    assert summarize("Same. More.", existing="Same.") == "Same."
    assert summarize("New one. More.", existing="Old.") == "New one."
