"""The plan: every request of a run, grouped in phases (suite × provider × load level).

Also what ``validate`` and ``--dry-run`` say of it: the count and the cost estimate, from
the same plan a run builds; nothing here sends or starts anything.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.config.spec import RunSpec
from harness.cost import price_table
from harness.cost.pricing import resolve_price
from harness.errors import ConfigError, ProviderSetupError
from harness.request import RequestSpec
from harness.run.budget import PlanLine, dry_run
from harness.run.scheduler import Phase
from harness.suites import SUITE_KINDS
from harness.suites.base import PhaseSpec
from harness.suites.chat import ChatSuite
from harness.suites.rag_qa import JudgeConfig, RagQaSuite

if TYPE_CHECKING:
    pass


def build_plan(spec: RunSpec) -> list[Phase]:
    """Every request of the run, grouped in phases: suite × provider × load level."""
    phases: list[Phase] = []
    index = 0
    for suite in spec.suites:
        load = {p.label: p for p in suite.phases()}
        for provider in spec.providers:
            requests = SUITE_KINDS[suite.kind].plan(suite, provider.name)
            for label, group in itertools.groupby(requests, key=lambda r: r.load_level):
                batch = list(group)
                how = load[label]
                phases.append(
                    Phase(
                        provider.name,
                        batch,
                        how.pattern,
                        how.level,
                        how.duration_s,
                        how.seed,
                        first_index=index,
                        **shape_of(how, batch),
                    )
                )
                index += len(batch)
    return phases


def shape_of(how: PhaseSpec, batch: list[RequestSpec]) -> dict[str, Any]:
    """A phase's load shape beyond pattern and level: burstiness, ramp, a trace's arrival
    offsets (planned into each request's ``meta``), a capacity search's settings."""
    shape: dict[str, Any] = {"burstiness": how.burstiness, "ramp_to": how.ramp_to}
    if how.pattern == "trace":
        shape["offsets"] = [float(r.meta["arrival_s"]) for r in batch]
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
    for phase in plan:
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
