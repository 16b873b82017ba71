"""Spend control: a worst-case estimate per request, a dry-run plan, and a budget cap.

The worst case of a request is its input tokens (counted locally with
``o200k_base``; providers' tokenizers differ, so this is an estimate) plus
``max_tokens`` output tokens, at the provider's price, plus the judge's
worst case when the suite has a judge. The budget reserves that worst case
before a request is sent and settles the real cost when its row arrives, so
the running total plus what is in flight never exceeds ``run.budget_usd``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from harness.cost.pricing import Price, estimate_cost_range
from harness.request import RequestSpec

JUDGE_MAX_TOKENS = 300
_PER_MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI counts chat messages


@functools.lru_cache(maxsize=65536)
def _text_tokens(text: str) -> int:
    from harness.cost.tokens import count_tokens

    return count_tokens(text)


def input_tokens(request: RequestSpec) -> int:
    """Local estimate of a request's input tokens."""
    return sum(
        _text_tokens(str(m.get("content", ""))) + _PER_MESSAGE_OVERHEAD for m in request.messages
    )


def request_cost_range(
    request: RequestSpec, price: Price, judge_price: Price | None = None
) -> tuple[float, float] | None:
    """(low, high) USD for one request; None when a price involved is unknown."""
    n = input_tokens(request)
    estimate = estimate_cost_range(price, n, request.max_tokens)
    if estimate is None:
        return None
    if judge_price is not None:
        judged = estimate_cost_range(judge_price, n + request.max_tokens + 200, JUDGE_MAX_TOKENS)
        if judged is None:
            return None
        estimate = (estimate[0] + judged[0], estimate[1] + judged[1])
    return estimate


@dataclass
class PlanLine:
    """One (suite, provider) line of a dry run."""

    suite: str
    provider: str
    requests: int
    time_bounded: bool
    input_tokens: int
    max_output_tokens: int
    cost_low: float | None
    cost_high: float | None
    price_source: str
    variable: bool = False
    """A capacity search: ``requests`` is one level's; it sends as many levels as it needs."""


def dry_run(
    phases: Iterable[Any],
    prices: Mapping[str, Price],
    judge_prices: Mapping[str, Price],
) -> list[PlanLine]:
    """What a run would send and what it could cost, without sending anything."""
    lines: dict[tuple[str, str], PlanLine] = {}
    unpriced: set[tuple[str, str]] = set()
    for phase in phases:
        for request in phase.requests:
            key = (request.suite, request.provider)
            line = lines.setdefault(
                key,
                PlanLine(
                    request.suite,
                    request.provider,
                    0,
                    False,
                    0,
                    0,
                    0.0,
                    0.0,
                    prices[request.provider].source,
                ),
            )
            line.requests += 1
            line.time_bounded |= phase.duration_s is not None
            line.variable |= getattr(phase, "search", None) is not None
            line.input_tokens += input_tokens(request)
            line.max_output_tokens += request.max_tokens
            estimate = request_cost_range(
                request, prices[request.provider], judge_prices.get(request.suite)
            )
            if estimate is None:
                unpriced.add(key)
            elif line.cost_low is not None and line.cost_high is not None:
                line.cost_low += estimate[0]
                line.cost_high += estimate[1]
    for key in unpriced:
        lines[key].cost_low = lines[key].cost_high = None
    return list(lines.values())


class Budget:
    """Reserve a request's worst case before sending; settle its real cost after."""

    def __init__(
        self,
        limit_usd: float,
        prices: Mapping[str, Price],
        judge_prices: Mapping[str, Price],
        *,
        spent_usd: float = 0.0,
    ):
        self.limit_usd = limit_usd
        self.prices = prices
        self.judge_prices = judge_prices
        # A resumed run starts with what was spent before (see ``recovered_spend``).
        self.recovered_usd = spent_usd
        self.spent_usd = spent_usd
        self.reserved_usd = 0.0
        self.unpriced_requests = 0
        self.stopped_reason: str | None = None
        self._reservations: dict[int, float] = {}

    def worst_case(self, request: RequestSpec) -> float | None:
        """The request's worst-case cost (USD, its judge's included); None when unpriced."""
        estimate = request_cost_range(
            request, self.prices[request.provider], self.judge_prices.get(request.suite)
        )
        return None if estimate is None else estimate[1]

    def try_reserve(self, request: RequestSpec) -> bool:
        """True if the request may be sent; False (and a stop reason) if it could overspend."""
        worst = self.worst_case(request)
        # No price: it cannot be capped; counted and reported, not silently free.
        if not self.lease(worst or 0.0, unpriced=worst is None):
            return False
        self._reservations[id(request)] = worst or 0.0
        return True

    async def reserve(self, request: RequestSpec) -> bool:
        """:meth:`try_reserve`, awaitable: what the scheduler calls, so that a budget held
        elsewhere (:class:`harness.run.quotas.LeasedBudget`) can be asked over the network."""
        return self.try_reserve(request)

    def lease(self, worst_usd: float, *, unpriced: bool = False) -> bool:
        """Reserve ``worst_usd`` of the cap; False (and a stop reason) if it could overspend."""
        self.unpriced_requests += unpriced
        if self.spent_usd + self.reserved_usd + worst_usd > self.limit_usd:
            self.stopped_reason = (
                f"budget: spent ${self.spent_usd:.6f} + in flight ${self.reserved_usd:.6f}"
                f" + next request's worst case ${worst_usd:.6f} would exceed ${self.limit_usd:.6f}"
            )
            return False
        self.reserved_usd += worst_usd
        return True

    def settle(self, request: RequestSpec, row: Mapping[str, Any]) -> None:
        """Replace the reservation by what the request (and its judge) really cost."""
        self.release(self._reservations.pop(id(request), 0.0), spent_of(row))

    def release(self, reserved_usd: float, spent_usd: float) -> None:
        """Return a reservation of ``reserved_usd``; count ``spent_usd`` as spent."""
        self.reserved_usd -= reserved_usd
        self.spent_usd += spent_usd

    def summary(self) -> dict[str, Any]:
        return {
            "limit_usd": self.limit_usd,
            "spent_usd": round(self.spent_usd, 9),
            "recovered_usd": round(self.recovered_usd, 9),
            "stopped_reason": self.stopped_reason,
            "unpriced_requests": self.unpriced_requests,
        }


def spent_of(row: Mapping[str, Any]) -> float:
    """What a row's request (and its judge) cost: a cached answer was not bought again,
    its verdict was, unless it was stored too."""
    columns = ["cost_usd", "judge_cost_usd"]
    if row.get("from_cache"):
        columns = [] if row.get("judge_from_cache") is not False else ["judge_cost_usd"]
    return sum(float(v) for c in columns if isinstance(v := row.get(c), int | float))


def recovered_spend(
    rows_usd: float,
    phases: Iterable[Any],
    prices: Mapping[str, Price],
    warmup_requests: int,
    attempts: int,
) -> float:
    """What a run spent before it was resumed: its stored rows, plus its warm-ups.

    ``rows_usd`` is the cost of the finished rows (``ResumeState.spent_usd``).
    Warm-up requests are not stored, so each earlier attempt is charged, per
    provider, ``warmup_requests`` times the worst case of that provider's
    costliest request (warm-ups are never judged): an upper bound, so the
    resumed run cannot pass ``budget_usd`` through them. Requests in flight
    at a crash are not counted (nothing says what they cost).
    """
    worst: dict[str, float] = {}
    for phase in phases:
        for request in phase.requests:
            estimate = request_cost_range(request, prices[request.provider])
            if estimate is not None:
                worst[request.provider] = max(worst.get(request.provider, 0.0), estimate[1])
    return rows_usd + attempts * warmup_requests * sum(worst.values())
