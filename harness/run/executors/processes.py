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
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from harness.errors import ConfigError
from harness.request import Row
from harness.run.chains import chain_roots
from harness.run.executors import Job, Notify
from harness.run.scheduler import Phase, RunOutcome

_DONE = "__done__"


def split_phase(phase: Phase, workers: int, k: int) -> Phase | None:
    """Worker ``k``'s share of a phase (None when it gets no request)."""
    indices = phase.indices or list(
        range(phase.first_index, phase.first_index + len(phase.requests))
    )
    # Round-robin over chains: a conversation's turns stay in one worker (run.chains).
    roots = chain_roots(phase.requests)
    starts = {root: n for n, root in enumerate(sorted(set(roots)))}
    mine = [i for i, root in enumerate(roots) if starts[root] % workers == k]
    if not mine and phase.duration_s is None:
        return None
    level, ramp_to = phase.level, phase.ramp_to
    offset = 0.0
    if level is not None and phase.pattern == "concurrency":
        level = float(int(level) // workers + (k < int(level) % workers))
        if level == 0:
            return None
    elif level is not None:
        # Constant-rate workers interleave; a ramp's or a trace's arrivals are split as given.
        plain = phase.pattern == "rate" and ramp_to is None and phase.offsets is None
        offset = k / level if plain and level > 0 else 0.0
        level = level / workers
        ramp_to = None if ramp_to is None else ramp_to / workers
    requests = [phase.requests[i] for i in mine] or phase.requests[:1]
    return replace(
        phase,
        requests=requests,
        indices=[indices[i] for i in mine] or None,
        level=level,
        ramp_to=ramp_to,
        offsets=None if phase.offsets is None else [phase.offsets[i] for i in mine],
        seed=phase.seed * 1000 + k,
        start_offset_s=offset,
    )


def fair_share(total: int, workers: int, k: int) -> int:
    """Worker ``k``'s part of a cap: the parts sum to ``total`` (some may be 0)."""
    return total // workers + (k < total % workers)


def share_of(
    phase: Phase,
    workers: int,
    k: int,
    concurrency: int,
    provider_concurrency: dict[str, int],
) -> Phase | None:
    """Worker ``k``'s share of a phase, spread over no more workers than its caps allow.

    A cap of ``c`` below the number of workers (the global ``concurrency``, the
    provider's, or a closed loop's level) cannot be split into whole slots for
    every worker: the phase goes to the first ``c`` workers only, whose slots
    (``fair_share``) sum to the cap, so no request is dropped and the cap holds.
    """
    spread = min(workers, concurrency, provider_concurrency.get(phase.provider, workers))
    if phase.pattern == "concurrency" and phase.level is not None:
        spread = min(spread, int(phase.level))
    spread = max(1, spread)
    return split_phase(phase, spread, k) if k < spread else None


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

    def sink(row: dict[str, Any]) -> None:
        row["worker"] = share.k
        rows.put(row)

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
    keyed = [replace(p, key=i) for i, p in enumerate(job.phases)]
    barriers = {p.key: context.Barrier(workers) for p in keyed}
    shared_rates = {
        name: (r / workers if r else None, t / workers if t else None)
        for name, (r, t) in job.rates.items()
    }
    concurrency, provider_concurrency = job.concurrency, job.provider_concurrency
    processes = []
    for k in range(workers):
        share = replace(
            job,
            # Every worker gets every phase, possibly empty, so that each
            # barrier sees all its parties.
            phases=[
                share_of(p, workers, k, concurrency, provider_concurrency) or _idle_share(p)
                for p in keyed
            ],
            # A worker beyond a cap gets no request under it (share_of), so the
            # floor of 1 it is given here is never used.
            concurrency=max(1, fair_share(concurrency, workers, k)),
            provider_concurrency={
                n: max(1, fair_share(c, workers, k)) for n, c in provider_concurrency.items()
            },
            rates=shared_rates,
            unavailable=dict(job.unavailable),
            health=dict(job.health),
            budget=None,  # refused with workers by the config: a cap is one process's
        )
        process = context.Process(
            target=_worker_main, args=(WorkerJob(k, share), rows, barriers), daemon=True
        )
        process.start()
        processes.append(process)

    phases = job.phases
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
            _merge(total, item[2])
        else:
            sink(item)
    for process in processes:
        process.join(timeout=10)
    if interrupted:
        raise KeyboardInterrupt
    return total


def _idle_share(phase: Phase) -> Phase:
    # A worker with no request in a phase still meets the others at its barrier.
    return replace(phase, requests=[], indices=[], level=1.0)


def _merge(total: RunOutcome, part: RunOutcome | None) -> None:
    if part is None:
        return
    for name in (
        "finished",
        "errors",
        "cancelled",
        "untrustworthy",
        "measured",
        "not_sent",
        "retries",
    ):
        setattr(total, name, getattr(total, name) + getattr(part, name))
    total.warmup_errors.update(part.warmup_errors)
    for name, reason in part.unavailable.items():
        total.unavailable.setdefault(name, reason)
    for key, value in part.clock.items():
        total.clock[key] = max(total.clock.get(key, 0.0), value)
