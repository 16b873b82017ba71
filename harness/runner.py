"""Asyncio scheduling of a plan: phases, load patterns, concurrency caps, clock health.

The runner knows nothing about suites or litellm. It takes phases of request
specs, a ``send`` coroutine that turns one spec into one row, and a ``sink``
that receives each row as soon as it exists (so the store can flush it).

A phase is one provider at one load level. A provider's phases run one after
the other (a concurrency sweep must not overlap itself); different providers
run side by side. Load patterns:

- ``concurrency``: ``level`` workers, each sending its next request when the
  previous one ends (closed loop).
- ``rate``: a request every ``1/level`` seconds, whatever the responses do
  (open loop).
- ``poisson``: open loop with exponential inter-arrival times of mean
  ``1/level`` (seeded), as independent users produce.

A phase is bounded by its number of requests, or by ``duration_s`` (requests
cycle through the phase's list until the time is up). Open-loop arrivals are
still bounded by the global concurrency cap; the delay that causes is
recorded per row as ``schedule_lag_s``.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.budget import Budget
from harness.clock import LoopMonitor
from harness.limits import RateLimiter, RetryPolicy
from harness.providers.trace import request_identity
from harness.suites.base import RequestSpec

Row = dict[str, Any]
Send = Callable[[RequestSpec], Awaitable[Row]]
NO_RETRY = RetryPolicy(max_retries=0)


@dataclass
class Phase:
    """One provider at one load level."""

    provider: str
    requests: list[RequestSpec]
    pattern: str = "concurrency"
    level: float | None = None  # workers, or requests per second
    duration_s: float | None = None
    seed: int = 0
    first_index: int = 0  # request_index of requests[0]
    indices: list[int] | None = None  # explicit request_index of each request (resume)
    key: int = 0  # position in the whole plan: worker processes line up on it
    start_offset_s: float = 0.0  # open loop: shifts arrivals (interleaves workers)


@dataclass
class RunOutcome:
    """What happened, for the manifest."""

    planned: int
    finished: int = 0
    errors: int = 0
    cancelled: int = 0
    untrustworthy: int = 0  # measured rows whose clock_ok is false
    measured: int = 0  # rows that were timed: not warm-ups, not served from the cache
    not_sent: int = 0  # requests the budget (or another stop) kept from being sent
    retries: int = 0
    warmup_errors: dict[str, str] = field(default_factory=dict)
    clock: dict[str, float] = field(default_factory=dict)


def cancelled_row(request: RequestSpec, index: int) -> Row:
    """The row of a request that was in flight when the run was interrupted."""
    return {
        **request_identity(request),
        "request_index": index,
        "status": "cancelled",
        "error_type": "cancelled",
    }


def arrivals(pattern: str, rate: float, seed: int) -> Iterator[float]:
    """Offsets (s) from the phase start at which an open-loop pattern sends."""
    if pattern == "rate":
        return (i / rate for i in itertools.count())
    rng = random.Random(seed)

    def poisson() -> Iterator[float]:
        t = 0.0
        while True:
            yield t
            t += rng.expovariate(rate)

    return poisson()


async def run_phases(
    phases: Sequence[Phase],
    send: Send,
    sink: Callable[[Row], None],
    *,
    concurrency: int,
    provider_concurrency: dict[str, int],
    warmup_requests: int = 1,
    budget: Budget | None = None,
    retries: dict[str, RetryPolicy] | None = None,
    limiters: dict[str, RateLimiter] | None = None,
    token_estimate: Callable[[RequestSpec], int] | None = None,
    before_phase: Callable[[Phase], Awaitable[None]] | None = None,
) -> RunOutcome:
    """Run every phase; each provider's phases in order, providers side by side.

    Before measuring, each provider gets ``warmup_requests`` unrecorded
    requests, so one-off connection and client setup is not counted as latency.
    """
    outcome = RunOutcome(planned=sum(len(p.requests) for p in phases if p.duration_s is None))
    by_provider: dict[str, list[Phase]] = defaultdict(list)
    for phase in phases:
        by_provider[phase.provider].append(phase)
    global_slots = asyncio.Semaphore(concurrency)
    monitor = LoopMonitor()
    monitor.start()
    # Time-bounded phases number their extra requests past every planned index.
    counter = itertools.count(
        max(
            (max(p.indices) + 1 if p.indices else p.first_index + len(p.requests) for p in phases),
            default=0,
        )
    )

    stop = asyncio.Event()

    retries = retries or {}
    limiters = limiters or {}
    rng = random.Random(0)

    async def attempt(request: RequestSpec) -> Row:
        """One attempt: paced by the provider's rate limits, within the global cap."""
        limiter = limiters.get(request.provider)
        if limiter is not None:
            await limiter.acquire(token_estimate(request) if token_estimate else 0)
        async with global_slots:
            return await send(request)

    async def one(request: RequestSpec, index: int, scheduled: float | None = None) -> None:
        if stop.is_set() or (budget is not None and not budget.try_reserve(request)):
            stop.set()
            outcome.not_sent += 1
            return
        policy = retries.get(request.provider, NO_RETRY)
        waited = 0.0
        start = time.perf_counter()
        try:
            n = 1
            while True:
                start = time.perf_counter()  # latency comes from the final attempt
                row = await attempt(request)
                if not policy.should_retry(row.get("error_type"), n):
                    break
                pause = policy.wait_s(n, row.get("retry_after_s"), rng)
                waited += pause
                outcome.retries += 1
                await asyncio.sleep(pause)
                n += 1
        except asyncio.CancelledError:
            sink(cancelled_row(request, index))
            outcome.cancelled += 1
            raise
        row["attempts"] = n
        row["retry_wait_s"] = waited
        if budget is not None:
            budget.settle(request, row)
        window = monitor.window(start, time.perf_counter())
        row["request_index"] = index
        if row.get("from_cache"):
            # Nothing was timed, so there is no clock to trust or distrust.
            row["loop_lag_ms"] = row["client_cpu"] = row["clock_ok"] = None
        else:
            row["loop_lag_ms"] = window.loop_lag_ms
            row["client_cpu"] = window.client_cpu
            row["clock_ok"] = window.trustworthy
        row["schedule_lag_s"] = None if scheduled is None else max(0.0, start - scheduled)
        outcome.finished += 1
        outcome.errors += row.get("status") != "ok"
        if not request.warmup and not row.get("from_cache"):
            # Clock health speaks of measured rows only: what the run's warm-ups,
            # its deliberate gc.collect() or its cache hits saw is nobody's latency.
            outcome.measured += 1
            outcome.untrustworthy += not window.trustworthy
            clock = outcome.clock
            clock["max_loop_lag_ms"] = max(clock.get("max_loop_lag_ms", 0.0), window.loop_lag_ms)
            clock["max_client_cpu"] = max(clock.get("max_client_cpu", 0.0), window.client_cpu)
        sink(row)

    def numbered(phase: Phase) -> Iterator[tuple[int, RequestSpec]]:
        """The phase's requests with their plan index; cycles when bounded by time."""
        indices = phase.indices or range(phase.first_index, phase.first_index + len(phase.requests))
        yield from zip(indices, phase.requests, strict=True)
        if phase.duration_s is not None:
            for r in itertools.cycle(phase.requests):
                yield next(counter), replace(r, repeat=r.repeat + 1_000_000)

    async def closed_loop(phase: Phase, cap: int) -> None:
        source = numbered(phase)
        deadline = None if phase.duration_s is None else time.perf_counter() + phase.duration_s

        async def worker() -> None:
            for index, request in source:
                if stop.is_set() or (deadline is not None and time.perf_counter() >= deadline):
                    return
                await one(request, index)

        workers = int(phase.level or cap)
        await asyncio.gather(*(worker() for _ in range(max(1, workers))))

    async def open_loop(phase: Phase) -> None:
        assert phase.level is not None
        start = time.perf_counter()
        tasks: list[asyncio.Task[None]] = []
        try:
            for (index, request), offset in zip(
                numbered(phase), arrivals(phase.pattern, phase.level, phase.seed), strict=False
            ):
                if stop.is_set() or (phase.duration_s is not None and offset >= phase.duration_s):
                    break
                due = start + phase.start_offset_s + offset
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(request, index, scheduled=due)))
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def warm(provider: str, request: RequestSpec) -> None:
        for _ in range(warmup_requests):
            warm_request = replace(request, warmup=True)
            row = await send(warm_request)
            if budget is not None:
                budget.settle(warm_request, row)  # warm-ups are paid for too
            if row.get("status") != "ok":
                outcome.warmup_errors[provider] = str(row.get("error_type"))

    async def provider_run(provider: str, its_phases: list[Phase]) -> None:
        cap = provider_concurrency.get(provider, concurrency)
        for phase in its_phases:
            if stop.is_set():
                return
            if before_phase is not None:
                await before_phase(phase)
            if phase.pattern == "concurrency":
                await closed_loop(phase, cap)
            else:
                await open_loop(phase)

    # Every provider is warmed up before any is measured: a first call's setup
    # blocks the event loop and would delay other providers' timestamps.
    await asyncio.gather(
        *(warm(p, ps[0].requests[0]) for p, ps in by_provider.items() if ps[0].requests)
    )
    # A full garbage collection walks every object litellm created at import
    # (~180 ms here) and stalls the loop mid-measurement; objects alive now
    # are kept out of future collections.
    gc.collect()
    gc.freeze()
    tasks = [asyncio.create_task(provider_run(p, ps)) for p, ps in by_provider.items()]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await monitor.stop()
        gc.unfreeze()  # a long-lived process (tests, a notebook) collects them again
        # The whole run's worst, warm-up and gc.collect() included: for diagnosis,
        # never quoted as the rows' condition (max_loop_lag_ms, max_client_cpu are).
        outcome.clock["whole_run_max_loop_lag_ms"] = round(monitor.max_lag_ms, 3)
        outcome.clock["whole_run_max_client_cpu"] = round(monitor.max_cpu, 3)
    return outcome
