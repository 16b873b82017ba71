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
  ``1/level`` (seeded), as independent users produce; ``gamma`` (``burstiness``),
  ramps and traces: see :mod:`harness.run.arrivals`.
- ``capacity``: levels chosen one at a time by a search (:mod:`harness.run.capacity`).

A phase is bounded by its number of requests, or by ``duration_s`` (requests
cycle through the phase's list until the time is up).

Caps apply in every pattern: a request waits for a slot under its provider's
``concurrency``, then for its provider's rpm/tpm limiter, then for a slot under
the global cap. An open-loop request's clock must not start only once it gets
through (coordinated omission: the queue would vanish from every latency), so
each row keeps, as offsets from its phase's start:

- ``scheduled_s``: when the request arrived: its scheduled arrival (open loop),
  or the moment a worker picked it (closed loop);
- ``sent_s``: when its final attempt was written to the socket (the
  transport's ``t0``: for litellm, the call to it);
- ``queue_wait_s`` = ``sent_s - scheduled_s``: the time it waited in the
  client (caps, limiter; for a retried request also its earlier attempts and
  back-off), so the latency a user sees is ``queue_wait_s + ttft_s``;
- ``schedule_lag_s`` (open loop only): how late the runner itself dispatched
  the request (event-loop lateness), a part of ``queue_wait_s``.

A request that names a predecessor (``RequestSpec.after``: a conversation's earlier
turn, a prompt cache's cold request) waits for that request's row before it takes any
cap, then arrives (closed loop: is picked; open loop: ``max(scheduled, now)``); see
:mod:`harness.run.chains`.

A provider that is gone is not sent to: when its server process has exited
(``health``), or its warm-up could not connect even after retries, it is
*unavailable* and each of its remaining planned requests becomes a row with
``error_type = "provider_unavailable"`` and the reason, instead of attempts
against a dead port.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.cost.tokens import encoding
from harness.request import RequestSpec, Row, request_identity
from harness.run.arrivals import schedule
from harness.run.budget import Budget
from harness.run.chains import Chains, waits
from harness.run.clock import LoopMonitor
from harness.run.lazy import end_of, maybe_chained, phase_pairs
from harness.run.limits import RateLimiter, RetryPolicy

if TYPE_CHECKING:
    from harness.run.capacity import SearchSettings

Send = Callable[[RequestSpec], Awaitable[Row]]
NO_RETRY = RetryPolicy(max_retries=0)
Health = Callable[[], str | None]
"""None while a provider's server process runs; else why it is gone (exit status, log tail)."""
UNAVAILABLE = "provider_unavailable"
"""``error_type`` of a planned request not sent because its provider is gone."""
_RECHECK_S = 0.25  # a server's sockets close a moment before its exit status exists


@dataclass
class Phase:
    """One provider at one load level."""

    provider: str
    requests: Sequence[RequestSpec]  # a list, or generated as sent (run.lazy.PlannedRequests)
    pattern: str = "concurrency"
    level: float | None = None  # workers, or requests per second
    duration_s: float | None = None
    seed: int = 0
    first_index: int = 0  # request_index of requests[0]
    indices: list[int] | None = None  # explicit request_index of each request (resume)
    key: int = 0  # position in the whole plan: worker processes line up on it
    start_offset_s: float = 0.0  # open loop: shifts arrivals (interleaves workers)
    # Load shapes (harness.run.arrivals, harness.run.capacity):
    burstiness: float = 1.0  # gamma shape of the gaps; 1 = Poisson
    ramp_to: float | None = None  # rate rises linearly from ``level`` over ``duration_s``
    offsets: list[float] | None = None  # a trace: each request's arrival offset (s)
    search: SearchSettings | None = None  # a capacity search: levels chosen as it runs
    until: Callable[[], bool] | None = None  # ends the phase early once true (not picklable)


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
    unavailable: dict[str, str] = field(default_factory=dict)  # provider → why it was not sent to
    capacity: list[dict[str, Any]] = field(default_factory=list)  # each capacity search's result
    executor: dict[str, Any] = field(default_factory=dict)  # for the manifest (ray: nodes, clocks)


def cancelled_row(request: RequestSpec, index: int) -> Row:
    """The row of a request that was in flight when the run was interrupted."""
    return {
        **request_identity(request),
        "request_index": index,
        "status": "cancelled",
        "error_type": "cancelled",
    }


def sent_at(row: Row, called: float) -> float:
    """When the request was written: the transport's ``t0_perf_s``, else the call.

    A cached row, or a transport that does not say, is taken as sent at the call;
    a ``t0`` outside [call, now] (a row from elsewhere) is not trusted.
    """
    t0 = row.get("t0_perf_s")
    if isinstance(t0, float) and called <= t0 <= time.perf_counter():
        return t0
    return called


def unavailable_row(request: RequestSpec, index: int, reason: str) -> Row:
    """The row of a planned request that was not sent: its provider is gone."""
    return {
        **request_identity(request),
        "request_index": index,
        "status": "error",
        "error_type": UNAVAILABLE,
        "error_message": reason,
        "attempts": 0,
        "retry_wait_s": 0.0,
    }


def arrivals(pattern: str, rate: float, seed: int) -> Iterator[float]:
    """Offsets (s) from the phase start at which an open-loop pattern sends."""
    return schedule(pattern, rate, seed)


def phase_arrivals(phase: Phase) -> Iterator[float]:
    """The arrival offsets of an open-loop phase: its trace, or its pattern's schedule."""
    if phase.offsets is not None:
        return iter(phase.offsets)
    assert phase.level is not None
    return schedule(
        phase.pattern,
        phase.level,
        phase.seed,
        burstiness=phase.burstiness,
        ramp_to=phase.ramp_to,
        duration_s=phase.duration_s,
    )


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
    health: Mapping[str, Health] | None = None,
    unavailable: Mapping[str, str] | None = None,
    notify: Callable[[str, str], None] | None = None,
    prepare: Callable[[RequestSpec], RequestSpec | Row] | None = None,
) -> RunOutcome:
    """Run every phase; each provider's phases in order, providers side by side.

    Before measuring, each provider gets ``warmup_requests`` unrecorded
    requests (retried like measured ones), so one-off connection and client
    setup is not counted as latency.

    ``health`` (provider → check) is consulted after a failed request; a provider
    named in ``unavailable`` (provider → reason) from the start, or found dead, is
    not sent to again (see the module doc). ``notify(provider, message)`` hears
    at once of a failed warm-up or a provider that became unavailable. ``prepare``
    (idempotent; ``send`` applies it too) completes a chained request before its budget
    and rate-limit estimates are made: a conversation's own history counts.
    """
    outcome = RunOutcome(
        planned=sum(len(p.requests) for p in phases if p.duration_s is None and p.search is None)
    )
    outcome.unavailable.update(unavailable or {})
    gone = outcome.unavailable
    health = health or {}
    by_provider: dict[str, list[Phase]] = defaultdict(list)
    for phase in phases:
        by_provider[phase.provider].append(phase)
    global_slots = asyncio.Semaphore(concurrency)
    # A provider's concurrency is a cap in every pattern, not only the size of
    # a closed loop's worker pool.
    provider_slots = {name: asyncio.Semaphore(cap) for name, cap in provider_concurrency.items()}
    # Rows count each chunk's tokens with the local tokenizer: its one-off load
    # (~0.8 s) blocks the loop, so it happens before the clock monitor starts.
    encoding()
    if any(p.search is not None for p in phases):
        # Likewise a capacity search's statistics (numpy): imported now, not mid-level.
        from harness.run.capacity import wilson

        wilson(1, 1)
    monitor = LoopMonitor()
    monitor.start()
    # Time-bounded phases number their extra requests past every planned index.
    counter = itertools.count(max((end_of(p) for p in phases), default=0))

    stop = asyncio.Event()
    # Requests that wait for an earlier request's row (a conversation's turns); a
    # generated phase says whether it has any, so a big plan is not walked for them.
    chains = Chains(r for p in phases if maybe_chained(p) for r in p.requests)
    # (provider, load level) → a capacity search's observer of that level's rows.
    watchers: dict[tuple[str, str | None], Callable[[Row], None]] = {}

    retries = retries or {}
    limiters = limiters or {}
    rng = random.Random(0)

    def mark_gone(provider: str, reason: str) -> None:
        if provider not in gone:
            gone[provider] = reason
            if notify is not None:
                notify(provider, f"not sent to any more: {reason}")

    async def died(provider: str, *, recheck: bool = False) -> str | None:
        """Why the provider's server is gone, or None (then maybe look again shortly)."""
        check = health.get(provider)
        if check is None:
            return None
        reason = check()
        if reason is None and recheck:
            await asyncio.sleep(_RECHECK_S)
            reason = check()
        if reason is not None:
            mark_gone(provider, reason)
        return reason

    async def attempt(request: RequestSpec) -> tuple[Row, float]:
        """One attempt within the provider's cap, paced by its rate limits, within the
        global cap; returns the row and when the request was written (perf_counter)."""
        async with provider_slots.get(request.provider) or contextlib.nullcontext():
            limiter = limiters.get(request.provider)
            if limiter is not None:
                tokens = token_estimate(request) if token_estimate and limiter.tpm else 0
                await limiter.acquire(tokens)
            async with global_slots:
                called = time.perf_counter()
                row = await send(request)
        return row, sent_at(row, called)

    async def one(
        request: RequestSpec, index: int, origin: float, scheduled: float | None = None
    ) -> None:
        """Send one request (with retries) and sink its row; ``origin`` is the phase's
        start and ``scheduled`` an open-loop arrival (both perf_counter)."""
        row: Row | None = None
        try:
            if waits(request):
                # Before any cap is taken: a chained request arrives once its
                # predecessor's row exists (or at its scheduled arrival, if later).
                previous = await chains.wait(request)
                if previous is None:  # the predecessor was never sent: neither is this
                    outcome.not_sent += 1
                    return
                request = replace(request, previous=previous)
                if scheduled is not None:
                    scheduled = max(scheduled, time.perf_counter())
            if prepare is not None and request.after is not None:
                prepared = prepare(request)  # its estimates below count its whole history
                if isinstance(prepared, RequestSpec):
                    request = prepared
            row = await one_request(request, index, origin, scheduled)
        finally:
            chains.finished(request, row)

    async def one_request(
        request: RequestSpec, index: int, origin: float, scheduled: float | None
    ) -> Row | None:
        """:func:`one`'s work; returns the row it sank (None when nothing was sent)."""
        dispatched = time.perf_counter()
        arrival = dispatched if scheduled is None else scheduled
        if request.provider in gone:
            row = unavailable_row(request, index, gone[request.provider])
            sink(row)
            outcome.errors += 1
            return row
        if stop.is_set() or (budget is not None and not await budget.reserve(request)):
            stop.set()
            outcome.not_sent += 1
            return None
        policy = retries.get(request.provider, NO_RETRY)
        waited = 0.0
        start = time.perf_counter()
        try:
            n = 1
            while True:
                start = time.perf_counter()  # latency comes from the final attempt
                row, sent = await attempt(request)
                if row.get("status") != "ok" and (reason := await died(request.provider)):
                    # The server died under this request: say so, and do not retry.
                    row["error_message"] = f"{row.get('error_message') or ''}\n{reason}".strip()
                    break
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
        row["scheduled_s"] = arrival - origin
        row["sent_s"] = sent - origin
        row["queue_wait_s"] = max(0.0, sent - arrival)
        row["schedule_lag_s"] = None if scheduled is None else max(0.0, dispatched - scheduled)
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
        if watchers and (watch := watchers.get((request.provider, request.load_level))):
            watch(row)
        return row

    def numbered(phase: Phase) -> Iterator[tuple[int, RequestSpec]]:
        """The phase's requests with their plan index; cycles when bounded by time."""
        yield from phase_pairs(phase)
        while phase.duration_s is not None and phase.requests:
            # Cycled by iterating again (a generated phase regenerates), not by
            # itertools.cycle, which would keep every request it has seen.
            for r in phase.requests:
                if phase.provider in gone:
                    return  # a gone provider's time is not filled with more rows
                yield next(counter), replace(r, repeat=r.repeat + 1_000_000)

    async def closed_loop(phase: Phase, cap: int) -> None:
        source = numbered(phase)
        origin = time.perf_counter()
        deadline = None if phase.duration_s is None else origin + phase.duration_s

        async def worker() -> None:
            for index, request in source:
                if stop.is_set() or (deadline is not None and time.perf_counter() >= deadline):
                    return
                if phase.until is not None and phase.until():
                    return
                await one(request, index, origin)

        workers = int(phase.level or cap)
        await asyncio.gather(*(worker() for _ in range(max(1, workers))))

    async def open_loop(phase: Phase) -> None:
        assert phase.level is not None
        start = time.perf_counter()
        # Only the requests in flight: a finished one's task is dropped at once (a
        # million-request phase must not keep a million finished tasks), a failed one
        # kept to raise its error.
        tasks: set[asyncio.Task[None]] = set()
        failed: list[asyncio.Task[None]] = []

        def finished(task: asyncio.Task[None]) -> None:
            tasks.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task)

        try:
            for (index, request), offset in zip(
                numbered(phase), phase_arrivals(phase), strict=False
            ):
                if stop.is_set() or (phase.duration_s is not None and offset >= phase.duration_s):
                    break
                if phase.until is not None and phase.until():
                    break  # e.g. a capacity level already decided: over capacity
                due = start + phase.start_offset_s + offset
                delay = due - time.perf_counter()
                if delay > 0 and phase.provider not in gone:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(request, index, start, scheduled=due))
                tasks.add(task)
                task.add_done_callback(finished)
                if failed:
                    await failed[0]  # raises its error
            await asyncio.gather(*tasks)
            if failed:
                await failed[0]
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def warm(provider: str, request: RequestSpec) -> None:
        if token_estimate is not None:
            # The first estimate loads the tokenizer (~1 s, blocking the loop):
            # here, not in the first measured request's queue wait.
            token_estimate(request)
        policy = retries.get(provider, NO_RETRY)
        for _ in range(warmup_requests):
            if provider in gone:
                return
            warm_request = replace(request, warmup=True)
            n = 1
            while True:
                row = await send(warm_request)
                if budget is not None:
                    budget.settle(warm_request, row)  # warm-ups are paid for too
                if not policy.should_retry(row.get("error_type"), n):
                    break
                await asyncio.sleep(policy.wait_s(n, row.get("retry_after_s"), rng))
                n += 1
            if row.get("status") != "ok":
                await warmup_failed(provider, row, n)

    async def warmup_failed(provider: str, row: Row, attempts: int) -> None:
        """Record a failed warm-up; a dead server or a port nobody answers is unavailable."""
        error_type = str(row.get("error_type"))
        outcome.warmup_errors[provider] = error_type
        message = f"{error_type} after {attempts} attempt(s): {row.get('error_message') or ''}"
        if await died(provider, recheck=True):
            return
        if error_type == "connection_error":
            mark_gone(provider, f"its warm-up request could not connect ({message.strip()})")
        elif notify is not None:
            notify(provider, f"warm-up failed: {message.strip()}")

    async def provider_run(provider: str, its_phases: list[Phase]) -> None:
        cap = provider_concurrency.get(provider, concurrency)
        for phase in its_phases:
            if stop.is_set():
                return
            if before_phase is not None:
                await before_phase(phase)
            if phase.search is not None:
                await searched(phase, cap)
            elif phase.pattern == "concurrency":
                await closed_loop(phase, cap)
            else:
                await open_loop(phase)

    async def searched(phase: Phase, cap: int) -> None:
        """A capacity search: one level at a time, each a phase of its own."""
        from harness.run.capacity import search_capacity

        async def run_level(level: Phase, watch: Callable[[Row], None]) -> None:
            key = (level.provider, level.requests[0].load_level)
            watchers[key] = watch
            try:
                if level.pattern == "concurrency":
                    await closed_loop(level, cap)
                else:
                    await open_loop(level)
            finally:
                del watchers[key]

        def stopped() -> bool:  # a stopped run, or a provider gone: no more levels
            return stop.is_set() or phase.provider in gone

        found = await search_capacity(phase, run_level, lambda: next(counter), stopped)
        outcome.capacity.append(found)

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
