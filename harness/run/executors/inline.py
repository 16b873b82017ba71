"""The in-process executor: one event loop runs the whole job."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from harness.request import Row
from harness.run.budget import input_tokens
from harness.run.executors import Job, Notify
from harness.run.limits import RateLimiter
from harness.run.pipeline import Sender
from harness.run.scheduler import Phase, RunOutcome, run_phases


class InlineExecutor:
    """Runs the job on an event loop in this process."""

    def run(
        self, job: Job, sink: Callable[[Row], None], notify: Notify | None = None
    ) -> RunOutcome:
        """See :class:`~harness.run.executors.Executor`."""
        return asyncio.run(run_job(job, sink, notify=notify))


async def run_job(
    job: Job,
    sink: Callable[[Row], None],
    *,
    notify: Notify | None = None,
    before_phase: Callable[[Phase], Awaitable[None]] | None = None,
) -> RunOutcome:
    """Run ``job`` on the running event loop: its own sender (transports, judge, cache),
    its own rate limiters; every executor's unit of work."""
    sender = Sender(job.endpoints, job.judge_endpoints, job.cache)
    try:
        return await run_phases(
            job.phases,
            sender,
            sink,
            concurrency=job.concurrency,
            provider_concurrency=job.provider_concurrency,
            warmup_requests=job.warmup_requests,
            budget=job.budget,
            retries=job.retries,
            limiters={p: RateLimiter(rpm=r, tpm=t) for p, (r, t) in job.rates.items()},
            token_estimate=lambda r: input_tokens(r) + r.max_tokens,
            before_phase=before_phase,
            health=job.health,
            unavailable=job.unavailable,
            notify=notify,
            prepare=sender.prepare,
        )
    finally:
        await sender.close()
