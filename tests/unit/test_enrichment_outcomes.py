"""The enrichment run's summary over its batches (plain functions, no stores)."""

from __future__ import annotations

import pytest

from automem_pipelines.domain.enrichment.model import BatchResult
from automem_pipelines.domain.enrichment.outcomes import summarize_batches


def test_failures_that_could_not_be_recorded_are_counted_over_all_batches_in_order():
    first = BatchResult(
        0,
        ["a", "b", "c"],
        False,
        enriched=["a"],
        failed={"b": "e1", "c": "e2"},
        unrecorded={"c": "refused"},
    )
    second = BatchResult(1, ["d"], False, failed={"d": "e3"}, unrecorded={"d": "refused again"})
    summary = summarize_batches([second, first], expected=4, forced=False)
    assert (summary["enriched"], summary["failed"], summary["failed_ids"]) == (
        1,
        3,
        ["b", "c", "d"],
    )
    assert summary["unrecorded_failures"] == 2
    assert summary["unrecorded_ids"] == ["c", "d"]
    assert summary["last_unrecorded_error"] == "refused again"


def test_a_run_whose_failures_were_all_recorded_says_so():
    summary = summarize_batches([BatchResult(0, ["a"], False, failed={"a": "e"})], 1, False)
    assert (summary["failed"], summary["unrecorded_failures"]) == (1, 0)
    assert (summary["unrecorded_ids"], summary["last_unrecorded_error"]) == ([], None)


def test_counts_that_do_not_add_up_fail_loudly():
    with pytest.raises(RuntimeError, match="do not add up"):
        summarize_batches([BatchResult(0, ["a", "b"], False, enriched=["a"])], 2, False)
