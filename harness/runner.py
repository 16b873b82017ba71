"""Asyncio scheduling of a plan of requests: concurrency caps, warm-up, cancellation.

The runner knows nothing about suites or litellm. It takes request specs, a
``send`` coroutine that turns one spec into one row, and a ``sink`` that
receives each row as soon as it exists (so the store can flush it).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.suites.base import RequestSpec

Row = dict[str, Any]
Send = Callable[[RequestSpec], Awaitable[Row]]


@dataclass
class RunOutcome:
    """What happened, for the manifest."""

    planned: int
    finished: int = 0
    errors: int = 0
    cancelled: int = 0
    warmup_errors: dict[str, str] = field(default_factory=dict)


def cancelled_row(request: RequestSpec, index: int) -> Row:
    """The row of a request that was in flight when the run was interrupted."""
    return {
        "request_index": index,
        "suite": request.suite,
        "suite_kind": request.suite_kind,
        "case_id": request.case_id,
        "repeat": request.repeat,
        "provider": request.provider,
        "max_tokens": request.max_tokens,
        "status": "cancelled",
        "error_type": "cancelled",
    }


async def run_plan(
    plan: Sequence[RequestSpec],
    send: Send,
    sink: Callable[[Row], None],
    *,
    concurrency: int,
    provider_concurrency: dict[str, int],
    warmup_requests: int = 1,
) -> RunOutcome:
    """Send every request of ``plan``; each provider has its own worker pool.

    ``concurrency`` caps requests in flight across all providers;
    ``provider_concurrency[name]`` caps one provider (default: ``concurrency``).
    Before measuring, each provider gets ``warmup_requests`` unrecorded
    requests, so one-off connection and client setup is not counted as latency.
    """
    outcome = RunOutcome(planned=len(plan))
    queues: dict[str, list[tuple[int, RequestSpec]]] = defaultdict(list)
    for index, request in enumerate(plan):
        queues[request.provider].append((index, request))
    for q in queues.values():
        q.reverse()  # pop() from the end keeps plan order
    global_slots = asyncio.Semaphore(concurrency)

    async def warm(provider: str, request: RequestSpec) -> None:
        for _ in range(warmup_requests):
            row = await send(request)
            if row.get("status") != "ok":
                outcome.warmup_errors[provider] = str(row.get("error_type"))

    async def worker(queue: list[tuple[int, RequestSpec]]) -> None:
        while queue:
            index, request = queue.pop()
            async with global_slots:
                try:
                    row = await send(request)
                except asyncio.CancelledError:
                    sink(cancelled_row(request, index))
                    outcome.cancelled += 1
                    raise
            row["request_index"] = index
            outcome.finished += 1
            outcome.errors += row.get("status") != "ok"
            sink(row)

    await asyncio.gather(*(warm(p, q[-1][1]) for p, q in queues.items() if warmup_requests))
    tasks = [
        asyncio.create_task(worker(queue))
        for provider, queue in queues.items()
        for _ in range(min(provider_concurrency.get(provider, concurrency), len(queue)))
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return outcome
