"""The in-process executor: one event loop runs the whole job."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

from harness.request import Row
from harness.run.budget import Budget, input_tokens
from harness.run.executors import Job, Notify, stamp
from harness.run.limits import RateLimiter
from harness.run.pipeline import Sender
from harness.run.scheduler import Phase, RunOutcome, run_phases


class InlineExecutor:
    """Runs the job on an event loop in this process."""

    def run(
        self, job: Job, sink: Callable[[Row], None], notify: Notify | None = None
    ) -> RunOutcome:
        """See :class:`~harness.run.executors.Executor`."""
        node = socket.gethostname()
        return asyncio.run(
            run_job(job, lambda row: sink(stamp(row, "inline", 0, node)), notify=notify)
        )


async def run_job(
    job: Job,
    sink: Callable[[Row], None],
    *,
    notify: Notify | None = None,
    before_phase: Callable[[Phase], Awaitable[None]] | None = None,
    limiters: dict[str, RateLimiter] | None = None,
    budget: Budget | None = None,
) -> RunOutcome:
    """Run ``job`` on the running event loop: its own sender (transports, judge, cache),
    its own rate limiters (or ``limiters``, and ``budget`` instead of ``job.budget``:
    an account's quotas held elsewhere, see :mod:`harness.run.quotas`); every
    executor's unit of work."""
    sender = Sender(job.endpoints, job.judge_endpoints, job.cache)
    if limiters is None:
        limiters = {p: RateLimiter(rpm=r, tpm=t) for p, (r, t) in job.rates.items()}
    try:
        return await run_phases(
            job.phases,
            sender,
            sink,
            concurrency=job.concurrency,
            provider_concurrency=job.provider_concurrency,
            warmup_requests=job.warmup_requests,
            budget=budget if budget is not None else job.budget,
            retries=job.retries,
            limiters=limiters,
            token_estimate=lambda r: input_tokens(r) + r.max_tokens,
            before_phase=before_phase,
            health=job.health,
            unavailable=job.unavailable,
            notify=notify,
            prepare=sender.prepare,
        )
    finally:
        await sender.close()
