"""``load: {pattern: capacity}``: search for the highest load at which an SLO still holds.

The plan of a capacity phase is not known up front: its requests are a *template* (one
level's worth: the suite's warm-ups and requests), and the search decides, one level at
a time, the next level to send them at. Each level is an ordinary phase, labelled
``capacity=<rate>`` (open loop, ``search: rate``, arrivals ``load.arrivals``) or
``capacity-c=<n>`` (closed loop, ``search: concurrency``), run by the scheduler like any
other phase; its rows are stored like any other rows. The scheduler runs the search
(:func:`search_capacity`) inside its event loop, so it works in the inline executor;
with ``run.workers > 1`` the config is refused (``run.workers``), since each worker would
search on its own share of the load.

**A level passes** when the share of its measured requests that meet the SLO (as the
user sees it: ``queue_wait_s + ttft_s <= ttft_ms``, ``queue_wait_s + e2e_s <= e2e_ms``,
``itl_s <= itl_ms`` or no ITL; a failed request, a 429 included, never meets it) is at
least ``goodput``. **A level stops early** once it has more misses than the level may
have and still pass (``floor((1 - goodput) · n)`` of its ``n`` measured requests): it
is then over capacity whatever the rest would do (queues growing, 429s); its remaining
arrivals are not sent, the ones in flight finish and are stored.

**The search**: from ``start``, multiply by ``growth`` while levels pass (up to the
maximum: ``max_rate`` or ``max_concurrency``); after the first failure, bisect between the
highest passing and the lowest failing level until ``(high - low) / low <= resolution``
(for concurrency: until they are 1 apart, or within the resolution). If ``start`` fails,
divide by ``growth`` until a level passes (at most 10 times). The answer is the highest
passing level, with a Wilson 95 % interval of its goodput (the confidence of the answer:
a lower bound near the target says the next run may find it a step lower), and of the
lowest failing level's.

**Compared with a fixed sweep** of the same resolution (levels ``start · (1 +
resolution)^k`` up to the maximum, every one sent in full), the result says how many
requests that sweep would have sent (``sweep_requests``) beside the search's own.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from harness.request import RequestSpec, Row

if TYPE_CHECKING:
    from harness.run.scheduler import Phase
    from harness.suites.base import LoadConfig

MAX_STEPS_DOWN = 10
"""A search whose first level fails divides it by ``growth`` at most this many times."""
SIGNIFICANT = 4
"""Rate levels are rounded to this many significant digits (readable labels)."""


@dataclass(frozen=True)
class SearchSettings:
    """What a capacity search needs from ``load`` (picklable)."""

    search: str  # "rate" or "concurrency"
    arrivals: str  # the open-loop pattern of each rate level
    burstiness: float
    slo: dict[str, float]
    goodput: float
    start: float
    maximum: float
    resolution: float
    growth: float
    seed: int

    @property
    def integer(self) -> bool:
        return self.search == "concurrency"


def settings_of(load: LoadConfig) -> SearchSettings:
    """The search settings of a ``pattern: capacity`` load section."""
    assert load.slo is not None
    integer = load.search == "concurrency"
    top = load.max_concurrency if integer else load.max_rate
    assert top is not None  # the config requires it
    maximum = float(top)
    return SearchSettings(
        search=load.search,
        arrivals=load.arrivals,
        burstiness=load.shape,
        slo={k: v for k, v in load.slo.model_dump().items() if v is not None},
        goodput=load.goodput,
        start=float(max(1, round(load.start))) if integer else load.start,
        maximum=maximum,
        resolution=load.resolution,
        growth=load.growth,
        seed=load.seed,
    )


def meets_slo(row: Row, slo: dict[str, float]) -> bool:
    """Whether one row meets the SLO as its user saw it (see the module doc)."""
    if row.get("status") != "ok":
        return False
    wait = float(row.get("queue_wait_s") or 0.0)
    for key, column, queued in (
        ("ttft_ms", "ttft_s", True),
        ("e2e_ms", "e2e_s", True),
        ("itl_ms", "itl_s", False),
    ):
        if key not in slo:
            continue
        value = row.get(column)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if key == "itl_ms":
                continue  # fewer than two text chunks: ITL does not apply
            return False
        if (float(value) + (wait if queued else 0.0)) * 1000 > slo[key]:
            return False
    return True


def wilson(k: int, n: int) -> tuple[float | None, float | None]:
    """The Wilson 95 % interval of ``k`` successes in ``n`` (None, None for n = 0)."""
    if n == 0:
        return None, None
    from harness.scoring.stats import wilson_interval

    low, high = wilson_interval(k, n)
    # It contains k/n; floating point can put k = n's upper end at 1 - 1e-16.
    return min(max(0.0, low), k / n), max(min(1.0, high), k / n)


@dataclass
class Level:
    """One level tried: what was sent and how much of it met the SLO."""

    level: float
    label: str
    planned: int  # measured requests the level would send in full
    allowed_misses: int
    measured: int = 0
    met: int = 0
    rate_limited: int = 0
    errors: int = 0
    warmups: int = 0
    stopped_early: bool = False

    @property
    def misses(self) -> int:
        return self.measured - self.met

    @property
    def decided_over(self) -> bool:
        """Too many misses to pass whatever the rest does: over capacity."""
        return self.misses > self.allowed_misses

    def watch(self, row: Row, slo: dict[str, float]) -> None:
        """Count one finished row of this level."""
        if row.get("warmup"):
            self.warmups += 1
            return
        self.measured += 1
        self.met += meets_slo(row, slo)
        self.rate_limited += row.get("error_type") == "rate_limited"
        self.errors += row.get("status") != "ok"

    def passed(self, goodput: float) -> bool:
        return self.measured > 0 and not self.decided_over and self.met >= goodput * self.measured

    def record(self, goodput: float) -> dict[str, Any]:
        low, high = wilson(self.met, self.measured)
        return {
            "level": self.level,
            "load_level": self.label,
            "requests": self.measured + self.warmups,
            "measured": self.measured,
            "met_slo": self.met,
            "goodput": self.met / self.measured if self.measured else None,
            "goodput_ci_low": low,
            "goodput_ci_high": high,
            "rate_limited": self.rate_limited,
            "errors": self.errors,
            "passed": self.passed(goodput),
            "stopped_early": self.stopped_early,
        }


@dataclass
class Search:
    """The level-choosing state machine (pure: no I/O), see the module doc."""

    settings: SearchSettings
    low: float | None = None  # highest passing level
    high: float | None = None  # lowest failing level
    tried: list[float] = field(default_factory=list)

    def _round(self, value: float) -> float:
        if self.settings.integer:
            return float(round(value))
        return float(f"{value:.{SIGNIFICANT}g}")

    def next_level(self) -> float | None:
        """The next level to try, or None when the answer is known."""
        s = self.settings
        if not self.tried:
            return min(s.start, s.maximum)
        if self.high is None:  # every level so far passed: grow
            assert self.low is not None
            if self.low >= s.maximum:
                return None
            return min(self._round(self.low * s.growth), s.maximum)
        if self.low is None:  # nothing passed yet: step down
            if len(self.tried) > MAX_STEPS_DOWN:
                return None
            nxt = self._round(self.high / s.growth)
            if s.integer and nxt < 1:
                return None
            return nxt if nxt < self.high else None
        if self.converged():
            return None
        mid = self._round((self.low + self.high) / 2)
        return mid if self.low < mid < self.high else None

    def converged(self) -> bool:
        """Low and high are within the resolution (or adjacent whole numbers)."""
        if self.low is None or self.high is None:
            return False
        gap = self.high - self.low
        if self.settings.integer and gap <= 1:
            return True
        return gap <= self.settings.resolution * self.low

    def observe(self, level: float, passed: bool) -> None:
        self.tried.append(level)
        if passed:
            self.low = level if self.low is None else max(self.low, level)
        else:
            self.high = level if self.high is None else min(self.high, level)


def sweep_levels(settings: SearchSettings) -> int:
    """Levels of a fixed sweep at the search's resolution: ``start · (1 + resolution)^k``
    up to the maximum (whole numbers for concurrency, each counted once)."""
    levels: set[float] = set()
    level = settings.start
    while level <= settings.maximum * (1 + 1e-9):
        levels.add(float(round(level)) if settings.integer else level)
        level *= 1 + settings.resolution
    return len(levels)


def label_of(settings: SearchSettings, level: float) -> str:
    return f"capacity-c={level:g}" if settings.integer else f"capacity={level:g}"


def _over(level: Level) -> Callable[[], bool]:
    return lambda: level.decided_over


RunLevel = Callable[["Phase", Callable[[Row], None]], Awaitable[None]]
"""Runs one level's phase; calls its second argument with every finished row."""


async def search_capacity(
    template: Phase,
    run_level: RunLevel,
    next_index: Callable[[], int],
    stopped: Callable[[], bool],
) -> dict[str, Any]:
    """Run a capacity search over ``template``'s requests; returns its result (manifest)."""
    settings = template.search
    assert settings is not None
    search = Search(settings)
    measured = sum(not r.warmup for r in template.requests)
    allowed = math.floor((1 - settings.goodput) * measured + 1e-9)
    levels: list[Level] = []
    while not stopped():
        value = search.next_level()
        if value is None:
            break
        label = label_of(settings, value)
        level = Level(value, label, measured, allowed)
        requests, indices = _level_requests(template, label, next_index)
        phase = replace(
            template,
            requests=requests,
            indices=indices,
            pattern="concurrency" if settings.integer else settings.arrivals,
            level=value,
            burstiness=settings.burstiness,
            seed=settings.seed + len(levels),
            search=None,
            until=_over(level),
        )

        def watch(row: Row, lv: Level = level) -> None:
            lv.watch(row, settings.slo)

        await run_level(phase, watch)
        level.stopped_early = level.decided_over and level.measured < level.planned
        levels.append(level)
        search.observe(value, level.passed(settings.goodput))
    return result_of(template, settings, search, levels, measured)


def _level_requests(
    template: Phase, label: str, next_index: Callable[[], int]
) -> tuple[Sequence[RequestSpec], list[int] | None]:
    """One level's requests (the template's, at ``label``) and their fresh indices: a
    generated template gives a generated level (numbered from its first fresh index;
    the counter is advanced past them), not a list of every request."""
    from harness.run.lazy import PlannedRequests, Relabel, is_lazy

    planned = template.requests
    if is_lazy(template) and isinstance(planned, PlannedRequests) and not planned.steps:
        first = next_index()
        for _ in range(planned.total - 1):
            next_index()
        level = PlannedRequests(
            planned.source, planned.total, first, planned.chained, (Relabel(label),)
        )
        return level, None
    return [replace(r, load_level=label) for r in planned], [next_index() for _ in planned]


def result_of(
    template: Phase,
    settings: SearchSettings,
    search: Search,
    levels: list[Level],
    measured: int,
) -> dict[str, Any]:
    """The search's record: every level, the answer and its confidence, the 429 ceiling."""
    records = [lv.record(settings.goodput) for lv in levels]
    by_level = {r["level"]: r for r in records}
    found = by_level.get(search.low) if search.low is not None else None
    above = by_level.get(search.high) if search.high is not None else None
    limited = [r for r in records if r["rate_limited"]]
    first = template.requests[0] if template.requests else None
    per_level = len(template.requests)
    return {
        "suite": first.suite if first else None,
        "provider": template.provider,
        "search": settings.search,
        "arrivals": None if settings.integer else settings.arrivals,
        "slo": settings.slo,
        "goodput_target": settings.goodput,
        "resolution": settings.resolution,
        "maximum": settings.maximum,
        "found": search.low,
        "found_load_level": found["load_level"] if found else None,
        "goodput_at_found": found["goodput"] if found else None,
        "goodput_ci_low": found["goodput_ci_low"] if found else None,
        "goodput_ci_high": found["goodput_ci_high"] if found else None,
        "lowest_failing": search.high,
        "goodput_above": above["goodput"] if above else None,
        "goodput_above_ci_high": above["goodput_ci_high"] if above else None,
        "at_maximum": search.low is not None and search.low >= settings.maximum,
        "converged": search.converged(),
        # 429s are the provider's rate ceiling, not the run's errors: the lowest level
        # at which the provider refused requests, and how many it refused there.
        "rate_ceiling": min(r["level"] for r in limited) if limited else None,
        "rate_limited": sum(r["rate_limited"] for r in records),
        "levels_tried": len(records),
        "requests_sent": sum(r["requests"] for r in records),
        "sweep_levels": sweep_levels(settings),
        "sweep_requests": sweep_levels(settings) * per_level,
        "measured_per_level": measured,
        "levels": records,
    }
