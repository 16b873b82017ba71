"""Spreading a run over worker processes, one event loop each.

One Python process streaming through litellm reads about 2,300 chunks/s;
past that its timestamps are late. With ``run.workers: N`` every phase is
split N ways — requests round-robin, concurrency and rates divided (N Poisson
streams of rate R/N make one Poisson stream of rate R; constant-rate arrivals
are interleaved) — and each worker runs its share in its own process. Workers
line up on a barrier before each phase, so a sweep's levels do not overlap.
Rows come back to the parent through a queue and are written to the same
run, as if one process had sent them. ``budget_usd`` is one ledger for all
workers (a manager process serves it; :mod:`harness.run.quotas`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.managers import BaseManager
from typing import Any

from harness.errors import ConfigError
from harness.request import Row
from harness.run.budget import Budget
from harness.run.executors import Job, Notify, stamp
from harness.run.executors.sharding import (
    Renumber,
    fair_share,
    keyed,
    merge_outcome,
    shard_job,
    share_of,
    split_phase,
)
from harness.run.quotas import LeasedBudget, SharedLedger, ThreadedQuotas, apply_state
from harness.run.scheduler import Phase, RunOutcome

__all__ = ["ProcessExecutor", "fair_share", "run_in_workers", "share_of", "split_phase"]

_DONE = "__done__"


class ProcessExecutor:
    """Runs the job in ``workers`` processes (see the module docstring)."""

    def __init__(self, workers: int):
        self.workers = workers

    def run(
        self, job: Job, sink: Callable[[Row], None], notify: Notify | None = None
    ) -> RunOutcome:
        """See :class:`~harness.run.executors.Executor`. ``notify`` is not heard across
        processes; a provider that dies is found through ``job.health`` (checks that
        pickle, such as :class:`~harness.providers.local_server.ServerWatch`).

        A capacity search is refused: each level is decided from all of its rows, which
        no one worker sees (``load_config`` refuses it first, naming ``run.workers``)."""
        if any(phase.search is not None for phase in job.phases):
            raise ConfigError(
                f"run.workers: {self.workers} cannot run a capacity search (load.pattern"
                " capacity); set run.workers: 1"
            )
        return run_in_workers(self.workers, job, sink)


@dataclass
class WorkerJob:
    """Worker ``k``'s share of the job (all picklable)."""

    k: int
    job: Job
    budget: LeasedBudget | None = None  # the run's one ledger, through the parent's manager


def _worker_main(share: WorkerJob, rows: Any, barriers: dict[int, Any]) -> None:
    from harness.children import die_with_parent
    from harness.run.executors.inline import run_job

    # A parent killed with SIGKILL runs no cleanup: the kernel stops its workers,
    # which would otherwise go on buying requests whose rows nobody journals.
    set_parent_death_signal = die_with_parent()
    if set_parent_death_signal is not None:
        set_parent_death_signal()

    passed: set[int] = set()

    async def line_up(phase: Phase) -> None:
        passed.add(phase.key)
        await asyncio.to_thread(barriers[phase.key].wait)

    async def work() -> RunOutcome:
        try:
            return await run_job(share.job, sink, before_phase=line_up, budget=share.budget)
        finally:
            if share.budget is not None:
                await share.budget.flush()
            # Stopped early (the budget): the others still meet this worker at every
            # phase it did not reach.
            for key in sorted(barriers.keys() - passed):
                await asyncio.to_thread(barriers[key].wait)

    node = socket.gethostname()

    def sink(row: dict[str, Any]) -> None:
        row["worker"] = share.k
        rows.put(stamp(row, "processes", share.k, node))

    outcome: RunOutcome | None = None
    try:
        outcome = asyncio.run(work())
    except KeyboardInterrupt:
        for barrier in barriers.values():
            barrier.abort()  # let the others stop waiting
    finally:
        rows.put((_DONE, share.k, outcome))


def run_in_workers(workers: int, job: Job, sink: Callable[[dict[str, Any]], None]) -> RunOutcome:
    """Run ``job`` in ``workers`` processes; rows go to ``sink`` in this process.

    A provider in ``job.unavailable`` is not sent to (see :func:`run_phases`); one that
    dies during the run is found by the workers through ``job.health``.
    """
    context = multiprocessing.get_context("spawn")
    rows = context.Queue()
    phases = keyed(job.phases)
    barriers = {p.key: context.Barrier(workers) for p in phases}
    processes = []
    # budget_usd is the run's, not a worker's: one ledger, served by a manager process,
    # leased by every worker (harness.run.quotas).
    manager, ledger = _ledger(context, job.budget)
    for k in range(workers):
        share = shard_job(replace(job, phases=phases), workers, k)
        budget = job.budget
        leased = (
            None
            if budget is None
            else LeasedBudget(
                budget.limit_usd, budget.prices, budget.judge_prices, ThreadedQuotas(ledger)
            )
        )
        process = context.Process(
            target=_worker_main, args=(WorkerJob(k, share, leased), rows, barriers), daemon=True
        )
        process.start()
        processes.append(process)

    total = RunOutcome(planned=sum(len(p.requests) for p in phases if p.duration_s is None))
    renumber = Renumber(phases)
    done = 0
    interrupted = False
    while done < workers:
        try:
            item = rows.get(timeout=0.5)
        except queue.Empty:
            if not any(p.is_alive() for p in processes) and rows.empty():
                break  # a worker died without saying so
            continue
        except KeyboardInterrupt:
            interrupted = True  # workers got the signal too; keep draining their rows
            continue
        if isinstance(item, tuple) and item and item[0] == _DONE:
            done += 1
            merge_outcome(total, item[2])
        else:
            renumber(item)  # extras of time-bounded phases: one number each
            sink(item)
    for process in processes:
        process.join(timeout=10)
    if manager is not None:
        assert job.budget is not None
        apply_state(job.budget, ledger.budget_state())
        manager.shutdown()
    if interrupted:
        raise KeyboardInterrupt
    return total


class _LedgerManager(BaseManager):
    pass


_LedgerManager.register("SharedLedger", SharedLedger)


def _ledger(context: Any, budget: Budget | None) -> tuple[Any, Any]:
    """A manager process serving one :class:`SharedLedger` of ``budget``, and its proxy."""
    if budget is None:
        return None, None
    manager = _LedgerManager(ctx=context)
    manager.start(_ignore_sigint)  # Ctrl-C stops the workers; the ledger outlives them
    return manager, manager.SharedLedger(budget)  # type: ignore[attr-defined]


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
