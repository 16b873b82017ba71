"""Splitting one job into shares, and merging the shares' outcomes: what every executor that
runs on more than one event loop (processes, ray) does the same way.

A phase is split N ways: requests round-robin (each keeps its ``request_index``),
concurrency and rates divided. N Poisson streams of rate R/N make one Poisson
stream of rate R (seeded apart); constant-rate shares are offset by ``k/R`` so
that their union is one arrival every ``1/R``. A cap below N (global, provider,
or a closed loop's level) cannot be split into whole slots, so the phase goes to
the first ``cap`` shares only (:func:`share_of`): no request is dropped, no cap
exceeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness.run.chains import chain_roots
from harness.run.executors import Job
from harness.run.lazy import Head, Share, end_of, is_lazy, lazy_requests
from harness.run.scheduler import Phase, RunOutcome


def split_phase(phase: Phase, workers: int, k: int) -> Phase | None:
    """Share ``k`` of a phase split ``workers`` ways (None when it gets no request)."""
    if is_lazy(phase):
        return _split_lazy(phase, workers, k)
    indices = phase_indices(phase)
    # Round-robin over chains: a conversation's turns stay in one share (run.chains).
    roots = chain_roots(phase.requests)
    starts = {root: n for n, root in enumerate(sorted(set(roots)))}
    mine = [i for i, root in enumerate(roots) if starts[root] % workers == k]
    if not mine and phase.duration_s is None:
        return None
    shape = _share_shape(phase, workers, k)
    if shape is None:
        return None
    requests = [phase.requests[i] for i in mine] or phase.requests[:1]
    return replace(
        phase,
        requests=requests,
        indices=[indices[i] for i in mine] or None,
        offsets=None if phase.offsets is None else [phase.offsets[i] for i in mine],
        **shape,
    )


def _split_lazy(phase: Phase, workers: int, k: int) -> Phase | None:
    """:func:`split_phase` of a generated phase: the same share, as a step (nothing is
    listed; the share regenerates its requests where it runs)."""
    planned = lazy_requests(phase)
    mine = planned.with_step(Share(workers, k, planned.chained))
    if not mine and phase.duration_s is None:
        return None
    shape = _share_shape(phase, workers, k)
    if shape is None:
        return None
    # A trace's phase is never generated (run.plan), so there are no offsets to split.
    assert phase.offsets is None
    return replace(phase, requests=mine or planned.with_step(Head(1)), **shape)


def _share_shape(phase: Phase, workers: int, k: int) -> dict[str, Any] | None:
    """Share ``k``'s level, ramp, seed and start offset (None: a closed loop's level
    leaves it no worker)."""
    level, ramp_to = phase.level, phase.ramp_to
    offset = 0.0
    if level is not None and phase.pattern == "concurrency":
        level = float(int(level) // workers + (k < int(level) % workers))
        if level == 0:
            return None
    elif level is not None:
        # Constant-rate shares interleave; a ramp's or a trace's arrivals are split as given.
        plain = phase.pattern == "rate" and ramp_to is None and phase.offsets is None
        offset = k / level if plain and level > 0 else 0.0
        level = level / workers
        ramp_to = None if ramp_to is None else ramp_to / workers
    return {
        "level": level,
        "ramp_to": ramp_to,
        "seed": phase.seed * 1000 + k,
        "start_offset_s": offset,
    }


def phase_indices(phase: Phase) -> Sequence[int]:
    """The ``request_index`` of each of the phase's planned requests (a listed phase's;
    a generated phase's come from :func:`harness.run.lazy.phase_pairs`)."""
    assert not is_lazy(phase), "a generated phase's indices are iterated, not listed"
    return phase.indices or range(phase.first_index, phase.first_index + len(phase.requests))


def fair_share(total: int, workers: int, k: int) -> int:
    """Share ``k``'s part of a cap: the parts sum to ``total`` (some may be 0)."""
    return total // workers + (k < total % workers)


def share_of(
    phase: Phase,
    workers: int,
    k: int,
    concurrency: int,
    provider_concurrency: dict[str, int],
) -> Phase | None:
    """Share ``k`` of a phase, spread over no more shares than its caps allow.

    A cap of ``c`` below the number of shares (the global ``concurrency``, the
    provider's, or a closed loop's level) cannot be split into whole slots for
    every share: the phase goes to the first ``c`` shares only, whose slots
    (``fair_share``) sum to the cap, so no request is dropped and the cap holds.
    """
    spread = min(workers, concurrency, provider_concurrency.get(phase.provider, workers))
    if phase.pattern == "concurrency" and phase.level is not None:
        spread = min(spread, int(phase.level))
    spread = max(1, spread)
    return split_phase(phase, spread, k) if k < spread else None


def idle_share(phase: Phase) -> Phase:
    """A phase with no request: a share with nothing to send still meets the others
    at the phase's barrier."""
    return replace(phase, requests=[], indices=[], level=1.0)


def keyed(phases: list[Phase]) -> list[Phase]:
    """The phases numbered by their place in the plan (the key every barrier uses)."""
    return [replace(p, key=i) for i, p in enumerate(phases)]


def shard_job(job: Job, workers: int, k: int, *, streams_cap: int | None = None) -> Job:
    """Share ``k`` of ``job`` (whose phases are :func:`keyed`) split ``workers`` ways.

    Every share gets every phase, possibly idle, so that each barrier sees all its
    parties. Rates are divided (a share sends at most its part of the account's
    rpm/tpm); ``streams_cap`` caps the share's requests in flight. The budget is not
    copied: a spend cap is the whole run's (see :mod:`harness.run.quotas`).
    """
    concurrency, provider_concurrency = job.concurrency, job.provider_concurrency
    own = max(1, fair_share(concurrency, workers, k))
    if streams_cap is not None:
        own = min(own, streams_cap)
    return replace(
        job,
        phases=[
            share_of(p, workers, k, concurrency, provider_concurrency) or idle_share(p)
            for p in job.phases
        ],
        # A share beyond a cap gets no request under it (share_of), so the floor
        # of 1 it is given here is never used.
        concurrency=own,
        provider_concurrency={
            n: max(1, fair_share(c, workers, k)) for n, c in provider_concurrency.items()
        },
        rates={
            name: (r / workers if r else None, t / workers if t else None)
            for name, (r, t) in job.rates.items()
        },
        unavailable=dict(job.unavailable),
        health=dict(job.health),
        budget=None,
    )


def merge_outcome(total: RunOutcome, part: RunOutcome | None) -> None:
    """Add one share's outcome to ``total`` (counts add, the worst clock wins)."""
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


class Renumber:
    """Gives the extra requests of time-bounded phases (numbered past the plan by each
    share's scheduler, so two shares may pick the same number) one number each, in the
    order they arrive; planned requests keep theirs."""

    def __init__(self, phases: list[Phase]):
        ends = [end_of(p) for p in phases if p.requests]
        self.planned_end = max(ends, default=0)
        self._next = self.planned_end

    def __call__(self, row: dict[str, object]) -> None:
        index = row.get("request_index")
        if isinstance(index, int) and index >= self.planned_end:
            row["request_index"] = self._next
            self._next += 1
