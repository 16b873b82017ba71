"""What every suite kind shares: its config base class and the request it plans."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Upper bounds of counts: a plan is materialised, and rows store them as int64.
MAX_TOKENS = 10_000_000
"""Largest ``max_tokens`` a suite may ask for."""
MAX_COUNT = 1_000_000
"""Largest number of requests, repeats or warm-up requests one setting may ask for."""


class StrictModel(BaseModel):
    """Base of every user-facing config model: unknown keys are errors, not ignored.

    NaN and infinity are refused in every number: a timeout, delay, rate or budget
    of ``.inf`` is a mistake (leave the key out for "no limit").
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Slo(StrictModel):
    """Service-level objectives; a request meeting all of them counts toward goodput."""

    ttft_ms: float | None = Field(default=None, gt=0)
    itl_ms: float | None = Field(default=None, gt=0)
    e2e_ms: float | None = Field(default=None, gt=0)


class Ramp(StrictModel):
    """A linear ramp of the request rate over the phase's ``duration_s``."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    start: float = Field(alias="from", ge=0, description="requests/s at the phase start")
    to: float = Field(gt=0, description="requests/s at duration_s (and after)")


OPEN_LOOP = ("rate", "poisson", "gamma")
"""Open-loop patterns with levels (a rate each); ``trace`` is open loop too."""


class LoadConfig(StrictModel):
    """How requests are sent: a closed loop at fixed concurrency, open-loop arrivals, a
    trace replayed, or a search for the capacity at an SLO.

    ``levels`` are concurrency levels for ``concurrency`` and request rates
    (requests/s) for ``rate``, ``poisson`` and ``gamma``; several levels make a sweep.
    See :mod:`harness.run.arrivals` for the arrival processes (``burstiness``, ``ramp``),
    :mod:`harness.suites.trace` for ``trace`` and :mod:`harness.run.capacity` for
    ``capacity``.
    """

    pattern: Literal["concurrency", "rate", "poisson", "gamma", "trace", "capacity"] = "concurrency"
    levels: list[float] | None = Field(default=None, min_length=1, max_length=100)
    duration_s: float | None = Field(
        default=None,
        gt=0,
        description="bound each level by time instead of request count; a ramp's length;"
        " a trace's window (trace seconds, from start_s)",
    )
    warmup: int = Field(
        default=0, ge=0, le=MAX_COUNT, description="requests per level excluded from stats"
    )
    seed: int = 0
    # Bursts and ramps (open loop).
    burstiness: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description="gamma shape of the inter-arrival gaps: 1 = Poisson, < 1 burstier",
    )
    ramp: Ramp | None = Field(default=None, description="rate from → to over duration_s")
    # Trace replay.
    trace: str | None = Field(default=None, description="trace file (JSON lines or CSV)")
    trace_format: Literal["auto", "jsonl", "csv", "mooncake", "azure"] = "auto"
    speed: float = Field(default=1.0, gt=0, le=1e6, description="trace time / replay time")
    start_s: float = Field(default=0.0, ge=0, description="trace window start (trace seconds)")
    # Capacity search.
    search: Literal["rate", "concurrency"] = Field(
        default="rate", description="capacity: search a request rate (open loop) or concurrency"
    )
    arrivals: Literal["poisson", "rate", "gamma"] = Field(
        default="poisson", description="capacity: the open-loop arrivals of each rate tried"
    )
    slo: Slo | None = Field(default=None, description="capacity: the SLO (default: the suite's)")
    goodput: float = Field(
        default=0.95, gt=0, le=1, description="capacity: share of requests that must meet it"
    )
    start: float = Field(default=1.0, gt=0, description="capacity: the first level tried")
    max_rate: float | None = Field(default=None, gt=0, le=1e6, description="capacity: rate cap")
    max_concurrency: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    resolution: float = Field(
        default=0.05, gt=0, le=1, description="capacity: stop when (high - low) / low <= this"
    )
    growth: float = Field(default=2.0, gt=1, le=100, description="capacity: step up by ×growth")

    @field_validator("trace")
    @classmethod
    def _resolve_trace(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        base = (info.context or {}).get("base_dir")
        path = Path(value)
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        if not path.is_file():
            raise ValueError(f"trace file not found: {value}")
        return str(path.resolve())

    @model_validator(mode="after")
    def _consistent(self) -> LoadConfig:
        pattern = self.pattern
        if self.levels is not None and any(level <= 0 for level in self.levels):
            raise ValueError("levels must be > 0")
        if pattern == "concurrency" and any(lv != int(lv) for lv in self.levels or []):
            raise ValueError("concurrency levels are whole numbers")
        needs_levels = pattern == "concurrency" or (pattern in OPEN_LOOP and self.ramp is None)
        if needs_levels and self.levels is None:
            raise ValueError(f"pattern {pattern} needs levels")
        if not needs_levels and self.levels is not None:
            raise ValueError(
                f"levels do not apply to pattern {pattern}"
                + (" with a ramp (its rates are ramp.from and ramp.to)" if self.ramp else "")
            )
        if self.burstiness is not None and pattern not in ("poisson", "gamma", "capacity"):
            raise ValueError("burstiness applies to pattern poisson or gamma")
        if self.ramp is not None:
            if pattern not in OPEN_LOOP:
                raise ValueError("ramp applies to pattern rate, poisson or gamma")
            if self.duration_s is None:
                raise ValueError("a ramp needs duration_s (its length)")
        if (self.trace is None) != (pattern != "trace"):
            raise ValueError(
                "pattern trace needs 'trace' (a file)"
                if pattern == "trace"
                else "'trace' applies to pattern trace"
            )
        if self.trace is not None:
            from harness.suites.trace import read_trace, window

            # Read now: a bad row is a config error (file and line) before anything is sent.
            rows = read_trace(self.trace, self.trace_format)
            if not window(rows, self.start_s, self.duration_s, self.speed):
                raise ValueError(
                    f"no row of {self.trace} falls in the window start_s={self.start_s:g},"
                    f" duration_s={self.duration_s} (the trace spans"
                    f" {rows[-1].arrival_s:g} s)"
                )
        if pattern == "capacity":
            if self.search == "rate" and self.max_rate is None:
                raise ValueError("a capacity search of rates needs max_rate")
            if self.search == "concurrency" and self.max_concurrency is None:
                raise ValueError("a capacity search of concurrency needs max_concurrency")
            if self.duration_s is not None:
                raise ValueError("a capacity level is bounded by its requests, not duration_s")
            if self.slo is None or not self.slo.model_dump(exclude_none=True):
                raise ValueError("a capacity search needs slo (ttft_ms, itl_ms and/or e2e_ms)")
            if self.burstiness is not None and self.arrivals != "gamma":
                raise ValueError("burstiness applies to arrivals: gamma")
        return self

    @property
    def shape(self) -> float:
        """The gamma shape of the gaps (1 = Poisson)."""
        return self.burstiness if self.burstiness is not None else 1.0


@dataclass(frozen=True)
class PhaseSpec:
    """One load level of a suite: its label and how its requests are scheduled."""

    label: str | None
    pattern: str = "concurrency"
    level: float | None = None
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0
    burstiness: float = 1.0
    ramp_to: float | None = None  # a ramp: ``level`` → ``ramp_to`` over ``duration_s``
    load: LoadConfig | None = None  # the whole load section (trace and capacity settings)


class SuiteConfig(StrictModel):
    """Keys every suite has; each kind adds its own."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="label in every table")
    kind: str
    max_tokens: int = Field(default=256, ge=1, le=MAX_TOKENS)
    system: str | None = Field(default=None, description="optional system message")
    load: LoadConfig | None = None

    def phases(self) -> list[PhaseSpec]:
        """The load levels to run; one unlabelled phase when ``load`` is not given.

        Labels: ``c=8``, ``rate=10``, ``poisson=10``, ``gamma=10,burst=0.5`` (a burstiness
        is named), ``poisson=2..20`` (a ramp), ``trace=2x`` (speed), ``capacity`` (the
        search's template; each level it tries is labelled ``capacity=<rate>`` or
        ``capacity-c=<concurrency>``).
        """
        if self.load is None:
            return [PhaseSpec(label=None)]
        load = self.load

        def spec(label: str, **how: Any) -> PhaseSpec:
            return PhaseSpec(label, load.pattern, warmup=load.warmup, load=load, **how)

        if load.pattern == "trace":
            # The window is applied when the trace is read; the phase is its rows.
            return [spec(f"trace={load.speed:g}x", level=load.speed, seed=load.seed)]
        if load.pattern == "capacity":
            return [spec("capacity", seed=load.seed)]
        prefix = {"concurrency": "c"}.get(load.pattern, load.pattern)
        burst = f",burst={load.burstiness:g}" if load.burstiness is not None else ""
        if load.ramp is not None:
            ramp = load.ramp
            return [
                spec(
                    f"{prefix}={ramp.start:g}..{ramp.to:g}{burst}",
                    level=ramp.start,
                    ramp_to=ramp.to,
                    duration_s=load.duration_s,
                    seed=load.seed,
                    burstiness=load.shape,
                )
            ]
        assert load.levels is not None
        return [
            spec(
                f"{prefix}={level:g}{burst}",
                level=level,
                duration_s=load.duration_s,
                seed=load.seed + i,
                burstiness=load.shape,
            )
            for i, level in enumerate(load.levels)
        ]
