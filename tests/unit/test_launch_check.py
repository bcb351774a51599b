"""What the stack's run launcher refuses before a run starts (the Launchpad's bad values)."""

from __future__ import annotations

import pytest

from automem_pipelines.ops.launch_check import refused_run_config


@pytest.mark.parametrize(
    ("op", "config", "reason"),
    [
        ("enumerate_memories", {"batch_size": 0}, "batch_size must be an integer from 1 to 2048"),
        ("enumerate_memories", {"chunk_size": 5}, "chunk_size"),
        ("detect_drift", {"failure_threshold": 7}, "failure_threshold must be a number above 0"),
        ("detect_drift", {"batch_size": 99999}, "batch_size must be an integer from 1 to 2048"),
    ],
)
def test_an_out_of_range_value_is_refused_with_the_field_and_its_range(op, config, reason):
    refusal = refused_run_config({"ops": {op: {"config": config}}})
    assert refusal is not None and refusal.startswith("invalid run config: ")
    assert reason in refusal and "\n" not in refusal


@pytest.mark.parametrize(
    "run_config",
    [
        None,
        {},
        {"ops": {"enumerate_memories": {"config": {"batch_size": 64, "force": True}}}},
        {"ops": {"detect_drift": {"config": {"dry_run": True}}}},
        {"ops": {"select_memories": {"config": {"ids": ["a", "b"]}}}},
        {"ops": {"some_other_op": {"config": {"batch_size": 0}}}},  # not ours to judge
        {"ops": "not a mapping"},
    ],
)
def test_a_valid_or_foreign_config_is_let_through(run_config):
    assert refused_run_config(run_config) is None
