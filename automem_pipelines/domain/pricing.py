"""The price of a re-embed before its first paid call: the memories it will embed (the
selection's, after incremental skips), their tokens (domain.tokens), the cost from a price
table (the ``genai-prices`` package's snapshot, offline; local and Ollama cost nothing), and
the time the provider's rate limits impose. Then the budget gate: a plan above
``max_cost_usd`` or ``max_tokens`` is refused, with the estimate in the message.

The target is an identity (provider, model, dim), not the configured provider: a migration
prices its target model with the same functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

from ..constants import BUDGET_REFUSED
from ..stores.graph import GraphStore
from .memory import has_content
from .selection import Selection
from .tokens import counter_for
from .vector_state import EmbeddingIdentity

FREE_PROVIDERS = ("local", "ollama")  # run on the operator's machine: no bill
GENAI_PROVIDER_IDS = {"openai": "openai", "voyage": "voyage"}
CONTENT_PAGE = 2_000  # ids whose content one graph read returns


class BudgetExceededError(RuntimeError):
    """The plan's estimate is above the run's budget: refused before any provider call."""

    def __init__(self, message: str, plan: Plan):
        super().__init__(message)
        self.plan = plan


@dataclass(frozen=True)
class RateLimits:
    """The provider's limits the pipeline paces itself under (None: not configured)."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True)
class Price:
    usd_per_million_tokens: float | None  # None: the price table does not know this model
    source: str


@dataclass(frozen=True)
class Budget:
    max_cost_usd: float | None = None
    max_tokens: int | None = None


@dataclass
class Plan:
    provider: str
    model: str
    dim: int
    memories: int  # to embed, after incremental skips
    tokens: int
    tokens_method: str  # "exact (...)" or "estimate (...)"
    cost_usd: float | None  # None: no price known for this model
    usd_per_million_tokens: float | None
    price_source: str
    requests: int
    seconds: float  # the least time the rate limits allow (0 when none are configured)
    seconds_basis: str
    total: int = 0  # memories listed
    skipped: int = 0  # unchanged, adopted, empty, missing, invalid or shared ids

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["cost_usd"] = None if self.cost_usd is None else round(self.cost_usd, 6)
        out["seconds"] = round(self.seconds, 3)
        return out

    def describe(self) -> str:
        cost = "unknown cost" if self.cost_usd is None else f"${self.cost_usd:.4f}"
        return (
            f"{self.memories} memories, {self.tokens} tokens ({self.tokens_method}), {cost} "
            f"with {self.provider}:{self.model} {self.dim}-d, {self.requests} requests, "
            f"at least {self.seconds:.1f}s ({self.seconds_basis})"
        )


def price_of(provider: str, model: str) -> Price:
    """USD per million input tokens: 0 for local/ollama, else the genai-prices snapshot."""
    if provider in FREE_PROVIDERS:
        return Price(0.0, f"{provider}: runs on this machine, no charge")
    provider_id = GENAI_PROVIDER_IDS.get(provider)
    if provider_id is None:
        return Price(None, f"no price table for provider {provider!r}")
    from importlib.metadata import version

    import genai_prices

    name = model.rsplit("/", 1)[-1]
    try:
        calc = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=1_000_000), model_ref=name, provider_id=provider_id
        )
    except LookupError:
        return Price(None, f"genai-prices {version('genai-prices')} has no price for {name!r}")
    return Price(float(calc.total_price), f"genai-prices {version('genai-prices')} snapshot")


def min_seconds(requests: int, tokens: int, limits: RateLimits) -> tuple[float, str]:
    """The least time ``requests`` requests of ``tokens`` tokens take under the limits."""
    bounds = []
    if limits.requests_per_minute:
        bounds.append(60.0 * requests / limits.requests_per_minute)
    if limits.tokens_per_minute:
        bounds.append(60.0 * tokens / limits.tokens_per_minute)
    if not bounds:
        return 0.0, "no rate limits configured: provider latency only, not estimated"
    return max(bounds), (
        f"at {limits.requests_per_minute or 'unlimited'} requests and "
        f"{limits.tokens_per_minute or 'unlimited'} tokens per minute"
    )


def price_texts(
    texts: Iterable[str],
    target: EmbeddingIdentity,
    batch_size: int,
    limits: RateLimits = RateLimits(),
) -> Plan:
    """The plan for embedding these texts with ``target`` in batches of ``batch_size``."""
    counter = counter_for(target.provider, target.model)
    memories = tokens = 0
    for text in texts:
        memories += 1
        tokens += counter.count_one(text)
    return _plan(memories, tokens, counter.method, target, batch_size, limits)


def _plan(
    memories: int,
    tokens: int,
    method: str,
    target: EmbeddingIdentity,
    batch_size: int,
    limits: RateLimits,
) -> Plan:
    price = price_of(target.provider, target.model)
    requests = math.ceil(memories / batch_size) if memories else 0
    seconds, basis = min_seconds(requests, tokens, limits)
    cost = None if price.usd_per_million_tokens is None else tokens * price.usd_per_million_tokens
    return Plan(
        provider=target.provider,
        model=target.model,
        dim=target.dim,
        memories=memories,
        tokens=tokens,
        tokens_method=method,
        cost_usd=None if cost is None else cost / 1_000_000,
        usd_per_million_tokens=price.usd_per_million_tokens,
        price_source=price.source,
        requests=requests,
        seconds=seconds,
        seconds_basis=basis,
    )


def _contents(graph: GraphStore, ids: Sequence[str], page: int) -> Iterator[str]:
    """The contents of these memories, a page at a time; the next page is read from the
    graph (in a thread) while this one's tokens are counted."""
    pages = [list(ids[start : start + page]) for start in range(0, len(ids), page)]
    if not pages:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="plan-contents") as pool:
        pending = pool.submit(graph.fetch_contents, pages[0])
        for n in range(len(pages)):
            contents = pending.result()
            if n + 1 < len(pages):
                pending = pool.submit(graph.fetch_contents, pages[n + 1])
            for value in contents.values():
                if has_content(value):
                    yield value


def price_ids(
    ids: Sequence[str],
    graph: GraphStore,
    target: EmbeddingIdentity,
    batch_size: int,
    limits: RateLimits = RateLimits(),
    page: int = CONTENT_PAGE,
) -> Plan:
    """Price embedding these memories: their contents are read from the graph a page at a
    time (memories without content, or deleted, are not counted) and their tokens counted
    with the target model family's tokenizer."""
    plan = price_texts(_contents(graph, ids, page), target, batch_size, limits)
    plan.total = len(ids)
    return plan


def price_selection(
    selection: Selection,
    graph: GraphStore,
    target: EmbeddingIdentity,
    batch_size: int,
    limits: RateLimits = RateLimits(),
    page: int = CONTENT_PAGE,
) -> Plan:
    """Price what a selection (selection.plan_reembed) left to embed."""
    plan = price_ids(selection.todo, graph, target, batch_size, limits, page)
    plan.total = selection.total
    plan.skipped = selection.skipped
    return plan


def over_budget(plan: Plan, budget: Budget) -> str | None:
    """Why the plan is refused by the budget, with its estimate; None when it fits. A plan
    whose price is unknown is checked against ``max_tokens`` only."""
    reasons = []
    if budget.max_tokens is not None and plan.tokens > budget.max_tokens:
        reasons.append(f"{plan.tokens} tokens is more than max_tokens={budget.max_tokens}")
    if (
        budget.max_cost_usd is not None
        and plan.cost_usd is not None
        and plan.cost_usd > budget.max_cost_usd
    ):
        reasons.append(f"${plan.cost_usd:.4f} is more than max_cost_usd={budget.max_cost_usd:g}")
    if not reasons:
        return None
    return (
        f"{BUDGET_REFUSED}: the estimate ({plan.describe()}) is over budget: "
        + "; ".join(reasons)
        + ". Raise max_cost_usd / max_tokens (run config, --max-cost-usd, or "
        "REEMBED_MAX_COST_USD / REEMBED_MAX_TOKENS) to run it."
    )


def check_budget(plan: Plan, budget: Budget) -> None:
    """Raise BudgetExceededError when the plan is over budget."""
    message = over_budget(plan, budget)
    if message is not None:
        raise BudgetExceededError(message, plan)
