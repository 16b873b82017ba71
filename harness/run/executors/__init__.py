"""Executors: given a job (a plan and what it needs) and a row sink, run it and return the outcome.

The session (:mod:`harness.run.session`) builds one :class:`Job` and hands it to
:func:`executor_for`'s choice; nothing above this package knows which executor runs.

- :class:`~harness.run.executors.inline.InlineExecutor`: this process, one event loop;
- :class:`~harness.run.executors.processes.ProcessExecutor`: ``run.workers`` processes,
  each running its share of every phase with the same scheduler;
- :class:`~harness.run.executors.ray.RayExecutor`: async actors on a Ray cluster, with
  one coordinator for the account's quotas (see docs/scale.md).

Both split the job the same way (:mod:`~harness.run.executors.sharding`).

A new executor (a cluster, say) implements :class:`Executor`: it must call ``sink`` once
per finished row in the calling process (the journal lives there), honour every cap in
the job (split them, never multiply them), and return one merged :class:`RunOutcome`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from harness.config.spec import RaySettings
from harness.providers.trace import Endpoint
from harness.request import Row
from harness.run.budget import Budget
from harness.run.cache import ResponseCache
from harness.run.executors.keys import KeySource
from harness.run.limits import RetryPolicy
from harness.run.scheduler import Health, Phase, RunOutcome

Notify = Callable[[str, str], None]
"""``notify(provider, message)``: a failed warm-up or a provider gone, heard at once."""


@dataclass
class Job:
    """A plan and everything needed to send it. Picklable; ``budget`` is enforced where
    the job runs, or by a coordinator (:mod:`harness.run.quotas`) for the ray executor."""

    phases: list[Phase]
    endpoints: dict[str, Endpoint]
    judge_endpoints: dict[str, Endpoint]
    concurrency: int
    provider_concurrency: dict[str, int]
    warmup_requests: int
    retries: dict[str, RetryPolicy]
    rates: dict[str, tuple[float | None, float | None]]
    """Provider → (requests per minute, tokens per minute), either None."""
    unavailable: dict[str, str] = field(default_factory=dict)
    """Providers never sent to, and why (their requests become ``provider_unavailable`` rows)."""
    health: dict[str, Health] = field(default_factory=dict)
    cache: ResponseCache | None = None
    budget: Budget | None = None
    key_sources: dict[str, KeySource] = field(default_factory=dict)
    """Endpoint (``provider``, ``judge:<suite>``) → the variables its secrets come from:
    what an executor whose senders run on other machines sends instead of the values."""


class Executor(Protocol):
    """Runs a job; rows go to ``sink`` in the calling process as they finish."""

    def run(
        self, job: Job, sink: Callable[[Row], None], notify: Notify | None = None
    ) -> RunOutcome:
        """Send every request of ``job``; raise KeyboardInterrupt after draining on Ctrl-C."""
        ...


def executor_for(
    workers: int, executor: str | None = None, ray: RaySettings | None = None
) -> Executor:
    """The executor named ``executor`` (``run.executor``); without a name, the one for
    ``run.workers``: this process for 1, worker processes beyond."""
    name = executor or ("processes" if workers > 1 else "inline")
    if name == "ray":
        from harness.run.executors.ray import RayExecutor

        return RayExecutor(ray or RaySettings())
    if name == "processes":
        from harness.run.executors.processes import ProcessExecutor

        return ProcessExecutor(workers)
    from harness.run.executors.inline import InlineExecutor

    return InlineExecutor()


def stamp(row: Row, executor: str, actor: int, node: str | None = None) -> Row:
    """Say where ``row`` was sent from (the ``executor``, ``node``, ``actor`` columns)."""
    row["executor"] = executor
    row["node"] = node if node is not None else socket.gethostname()
    row["actor"] = actor
    row.setdefault("node_clock_ok", True)  # one host, one clock: nothing to convert
    return row
