"""Spreading a run over worker processes, one event loop each.

One Python process streaming through litellm reads about 2,300 chunks/s;
past that its timestamps are late. With ``run.workers: N`` every phase is
split N ways — requests round-robin, concurrency and rates divided (N Poisson
streams of rate R/N make one Poisson stream of rate R; constant-rate arrivals
are interleaved) — and each worker runs its share in its own process. Workers
line up on a barrier before each phase, so a sweep's levels do not overlap.
Rows come back to the parent through a queue and are written to the same
run, as if one process had sent them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.request import Row
from harness.run.executors import Job, Notify, stamp
from harness.run.executors.sharding import (
    fair_share,
    keyed,
    merge_outcome,
    shard_job,
    share_of,
    split_phase,
)
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
        pickle, such as :class:`~harness.providers.local_server.ServerWatch`)."""
        return run_in_workers(self.workers, job, sink)


@dataclass
class WorkerJob:
    """Worker ``k``'s share of the job (all picklable)."""

    k: int
    job: Job


def _worker_main(share: WorkerJob, rows: Any, barriers: dict[int, Any]) -> None:
    from harness.children import die_with_parent
    from harness.run.executors.inline import run_job

    # A parent killed with SIGKILL runs no cleanup: the kernel stops its workers,
    # which would otherwise go on buying requests whose rows nobody journals.
    set_parent_death_signal = die_with_parent()
    if set_parent_death_signal is not None:
        set_parent_death_signal()

    async def line_up(phase: Phase) -> None:
        await asyncio.to_thread(barriers[phase.key].wait)

    node = socket.gethostname()

    def sink(row: dict[str, Any]) -> None:
        row["worker"] = share.k
        rows.put(stamp(row, "processes", share.k, node))

    outcome: RunOutcome | None = None
    try:
        outcome = asyncio.run(run_job(share.job, sink, before_phase=line_up))
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
    for k in range(workers):
        share = shard_job(replace(job, phases=phases), workers, k)
        process = context.Process(
            target=_worker_main, args=(WorkerJob(k, share), rows, barriers), daemon=True
        )
        process.start()
        processes.append(process)

    total = RunOutcome(planned=sum(len(p.requests) for p in phases if p.duration_s is None))
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
            sink(item)
    for process in processes:
        process.join(timeout=10)
    if interrupted:
        raise KeyboardInterrupt
    return total
