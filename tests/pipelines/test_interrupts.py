"""Interrupts stop the run, not just the step; store outages are retried; a write window is
never cut in the middle. In process (execute_in_process runs steps in this main thread, so
a SIGINT sent to ourselves arrives like Terminate's in a run worker)."""

from __future__ import annotations

import os
import signal

import dagster as dg
import pytest

from automem_pipelines.definitions import build_definitions
from automem_pipelines.domain import reembed
from automem_pipelines.domain.embeddings import local_provider
from automem_pipelines.ops.common import fail_fast_unless_transient, interrupts_at_checkpoints
from automem_pipelines.stores.vectors import VectorStoreUnavailableError
from tests.helpers import load_sample


def _started_steps(result: dg.ExecuteInProcessResult) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START]


def test_an_interrupt_in_a_step_starts_no_other_step():
    @dg.op(out=dg.DynamicOut(int))
    def fan_out():
        for i in range(3):
            yield dg.DynamicOutput(i, mapping_key=f"chunk_{i}")

    @dg.op
    def work(i: int) -> int:
        with fail_fast_unless_transient():
            if i == 0:
                os.kill(os.getpid(), signal.SIGINT)  # Terminate, as a run worker receives it
            return i

    @dg.job(executor_def=dg.in_process_executor)
    def three_chunks():
        fan_out().map(work)

    result = three_chunks.execute_in_process(raise_on_error=False)
    assert not result.success
    assert _started_steps(result) == ["fan_out", "work[chunk_0]"]  # chunks 1 and 2 never start
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_failure_data.error.cls_name == "DagsterExecutionInterruptedError"


def test_a_store_outage_is_retried_then_the_step_succeeds():
    calls = []

    @dg.op
    def flaky() -> int:
        with fail_fast_unless_transient(seconds_to_wait=0.01):
            calls.append(1)
            if len(calls) == 1:
                raise VectorStoreUnavailableError("qdrant restarting")
            return len(calls)

    @dg.job(executor_def=dg.in_process_executor)
    def retried():
        flaky()

    result = retried.execute_in_process()
    assert result.output_for_node("flaky") == 2
    assert [e.event_type for e in result.all_events].count(
        dg.DagsterEventType.STEP_UP_FOR_RETRY
    ) == 1


def test_other_errors_fail_at_once_without_retry():
    @dg.op
    def broken():
        with fail_fast_unless_transient():
            raise ValueError("vector size 384 does not match 256")

    @dg.job(executor_def=dg.in_process_executor)
    def failing():
        broken()

    result = failing.execute_in_process(raise_on_error=False)
    assert not result.success
    events = [e.event_type for e in result.all_events]
    assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert "ValueError: vector size 384" in failure.step_failure_data.user_failure_data.description


def test_no_project_op_has_a_retry_policy(make_settings):
    """A RetryPolicy turns an interrupt of its step into a retry (Dagster's rule for preempted
    pods), so Terminate would re-run the step instead of stopping the run."""
    definitions = build_definitions(make_settings())
    for job in definitions.resolve_all_job_defs():
        assert job.op_retry_policy is None, job.name
        for node_def in job.all_node_defs:
            assert getattr(node_def, "retry_policy", None) is None, f"{job.name}: {node_def.name}"


def test_a_held_interrupt_is_raised_at_the_next_checkpoint():
    # what was there before (Python's default handler, or SIG_IGN when the suite was started
    # in the background of a shell without job control)
    before = signal.getsignal(signal.SIGINT)
    passed = []
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        with interrupts_at_checkpoints() as checkpoint:
            checkpoint()
            os.kill(os.getpid(), signal.SIGINT)
            passed.append("rest of the window")  # not cut short
            checkpoint()
            passed.append("next window")
    assert passed == ["rest of the window"]
    assert signal.getsignal(signal.SIGINT) is before  # restored


def test_an_interrupt_during_the_last_window_is_raised_when_the_body_ends():
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        with interrupts_at_checkpoints():
            os.kill(os.getpid(), signal.SIGINT)
    with interrupts_at_checkpoints() as checkpoint:  # nothing received: nothing raised
        checkpoint()


def test_an_error_after_a_held_interrupt_ends_the_step_as_an_interrupt():
    """E.g. the stack stops FalkorDB while the interrupted window is still being written: the
    store error must not turn into a retry of the step."""
    with pytest.raises(dg.DagsterExecutionInterruptedError) as raised:
        with fail_fast_unless_transient(), interrupts_at_checkpoints():
            os.kill(os.getpid(), signal.SIGINT)
            raise VectorStoreUnavailableError("store closed")
    assert isinstance(raised.value.__cause__, VectorStoreUnavailableError)


class _InterruptedDuringSecondWrite:
    """The real store; SIGINT to ourselves in the middle of the second window's write."""

    def __init__(self, store):
        self.store, self.writes = store, 0

    def bulk_phase(self):
        return self.store.bulk_phase()

    def write_vectors(self, ids, vectors, payloads):
        self.writes += 1
        half = len(ids) // 2
        self.store.write_vectors(ids[:half], vectors[:half], payloads[:half])
        if self.writes == 2:
            os.kill(os.getpid(), signal.SIGINT)
        self.store.write_vectors(ids[half:], vectors[half:], payloads[half:])


def test_an_interrupted_upsert_finishes_its_window_and_writes_no_other(graph, vector_store):
    rows = load_sample(graph, 50)
    ids = [r["id"] for r in rows]
    provider = local_provider()
    vector_store.ensure_collection(provider.dim)
    store = _InterruptedDuringSecondWrite(vector_store)
    with pytest.raises(dg.DagsterExecutionInterruptedError):
        with interrupts_at_checkpoints() as checkpoint:
            reembed.reembed_ids(
                0, ids, graph, store, provider, 10, window=10, checkpoint=checkpoint
            )
    assert store.writes == 2
    assert vector_store.count() == 20  # two whole windows, nothing of the third
    assert set(vector_store.payloads(ids)) == set(ids[:20])
