"""What every op job shares: run-config validation, the trigger tag of UI launches,
transient-error retries, interrupt handling, metadata helpers.

Interrupts (Terminate, Ctrl-C of the stack, SIGTERM) must stop the run, not just the step.
Dagster's in-process executor goes on with every other step whose inputs are ready after a step
*fails*; only an interrupt that leaves the step as ``DagsterExecutionInterruptedError`` ends the
plan (the run then ends canceled, or failed when nobody asked for the cancel). Two things used
to turn it into something else: a ``RetryPolicy`` on the op (Dagster turns an interrupt of such
a step into a retry, meant for preempted pods) and catching it here as a ``Failure``. So these
ops have no RetryPolicy: store outages are retried by raising ``RetryRequested`` below, and
interrupts pass through unchanged.
"""

from __future__ import annotations

import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import dagster as dg
from pydantic import ValidationError, model_validator

from ..domain import pricing
from ..domain.params import ParamError, param_error_of
from ..domain.progress import DEFAULT_EVERY_SECONDS, Progress
from ..domain.vector_state import EmbeddingIdentity
from ..run_tags import ui_trigger_tags
from ..stores.graph import GraphUnavailableError
from ..stores.vectors import VectorStoreUnavailableError


def config_failure(error: ParamError | ValueError) -> dg.Failure:
    """A refused run parameter as the run's one failure: the field and the allowed range, not
    retried, no cause attached (nothing to debug: the value is wrong)."""
    return dg.Failure(description=f"invalid run config: {error}", allow_retries=False)


class CheckedConfig(dg.Config):
    """Base of every op Config. Dagster's config schema checks types only, so the ranges of
    the parameter types (``domain.params``) are checked when Dagster builds the Config, just
    before the op's first line: a refused value fails the run at once with one ``Failure``
    naming the field and its range (the same message the API and the CLI give), before any
    read or write, instead of a pydantic ValidationError with its stack trace."""

    @model_validator(mode="wrap")
    @classmethod
    def _refuse_out_of_range(cls, data, handler):
        try:
            return handler(data)
        except ValidationError as exc:
            raise config_failure(param_error_of(exc)) from None


@contextmanager
def refusing_bad_params() -> Iterator[None]:
    """A ParamError raised in the body (a check that needs the run, e.g. its partition key)
    becomes the same one-line config failure."""
    try:
        yield
    except ParamError as exc:
        raise config_failure(exc) from None


def tag_ui_launch(context: dg.OpExecutionContext) -> None:
    """Called by the first op of each job (the stack's run launcher tags the run before it
    starts: this covers runs launched another way)."""
    extra = ui_trigger_tags(context.run.tags)
    if extra:
        context.instance.add_run_tags(context.run_id, extra)


def refuse_over_budget(
    plan: pricing.Plan, asked: pricing.Budget | None, embeddings, prefix: str = ""
) -> None:
    """The budget gate: the run's own limits (``asked``; an unset one falls back to the
    embeddings resource's REEMBED_MAX_COST_USD / REEMBED_MAX_TOKENS) against the plan; over
    them, the step fails at once (no retry) with the estimate, the plan in its metadata."""
    asked = asked or pricing.Budget()
    budget = pricing.Budget(
        embeddings.max_cost_usd if asked.max_cost_usd is None else asked.max_cost_usd,
        embeddings.max_tokens if asked.max_tokens is None else asked.max_tokens,
    )
    refused = pricing.over_budget(plan, budget)
    if refused is not None:
        raise dg.Failure(
            description=prefix + refused,
            metadata={"plan": dg.MetadataValue.json(plan.as_dict())},
            allow_retries=False,
        )


TRANSIENT = (GraphUnavailableError, VectorStoreUnavailableError)
STORE_MAX_RETRIES = 3
STORE_RETRY_SECONDS = 2.0  # each wait is 1x-2x this (jitter)


@contextmanager
def fail_fast_unless_transient(
    max_retries: int = STORE_MAX_RETRIES, seconds_to_wait: float = STORE_RETRY_SECONDS
) -> Iterator[None]:
    """Retry store outages (``RetryRequested``, up to ``max_retries`` times); turn other errors
    into a Failure that is not retried (retrying a bad config or a dimension mismatch helps
    nobody); let interrupts through, so the run stops (a later force=false run picks up where
    it stopped)."""
    try:
        yield
    except TRANSIENT as exc:
        wait = seconds_to_wait * (1 + random.random())
        raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=wait) from exc
    except (dg.Failure, dg.RetryRequested):
        raise
    except Exception as exc:  # noqa: BLE001
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


# Ops that take Config used this name when the other ops still had a RetryPolicy; same thing.
retry_store_outages = fail_fast_unless_transient


@contextmanager
def interrupts_at_checkpoints() -> Iterator[Callable[[], None]]:
    """Hold interrupts (SIGINT, and SIGTERM where it is handled like SIGINT, as in a run
    worker) back while the body runs, and raise ``DagsterExecutionInterruptedError`` at the
    next call of the checkpoint it yields (or when the body ends), so a write window is never
    cut in the middle. Outside the main thread signals cannot be caught: the checkpoint does
    nothing and Dagster's own handling applies."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    received: list[int] = []
    sigint = signal.getsignal(signal.SIGINT)
    previous = {signal.SIGINT: sigint}
    if signal.getsignal(signal.SIGTERM) == sigint:
        previous[signal.SIGTERM] = sigint

    def hold(signum: int, _frame) -> None:
        received.append(signum)

    def checkpoint() -> None:
        if received:
            raise dg.DagsterExecutionInterruptedError()

    for signum in previous:
        signal.signal(signum, hold)
    try:
        yield checkpoint
    except BaseException as exc:
        # e.g. a store error because the stack is shutting down: the interrupt still wins,
        # or the step would be retried after it
        if received and not isinstance(exc, dg.DagsterExecutionInterruptedError):
            raise dg.DagsterExecutionInterruptedError() from exc
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    checkpoint()  # an interrupt during the last window


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def configured_identity(embeddings) -> EmbeddingIdentity:
    """The configured embedding (EMBEDDING_PROVIDER/EMBEDDING_MODEL/VECTOR_SIZE), read from
    configuration: readers that only compare stamps never load a provider."""
    return EmbeddingIdentity(embeddings.provider, embeddings.model, embeddings.vector_size)


PROGRESS_FIELD_DESCRIPTION = (
    "Seconds between two progress events of a long step (`progress <step>: done/total ...` "
    "log lines, shown live in the Dagster UI, read by the admin API and the CLI); 0 turns "
    "them off."
)


def progress_reporter(
    context: dg.OpExecutionContext,
    phase: str,
    total: int,
    every: float = DEFAULT_EVERY_SECONDS,
    unit: str = "memories",
) -> Progress:
    """A started `Progress` of this step whose events are the step's INFO log lines."""
    return Progress(phase, total, context.log.info, unit=unit, every=every).start()
