"""What every suite kind shares: its config base class and the request it plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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


class LoadConfig(StrictModel):
    """How requests are sent: a closed loop at fixed concurrency, or open-loop arrivals.

    ``levels`` are concurrency levels for ``concurrency`` and request rates
    (requests/s) for ``rate`` and ``poisson``; several levels make a sweep.
    """

    pattern: Literal["concurrency", "rate", "poisson"] = "concurrency"
    levels: list[float] = Field(min_length=1, max_length=100)
    duration_s: float | None = Field(
        default=None, gt=0, description="bound each level by time instead of request count"
    )
    warmup: int = Field(
        default=0, ge=0, le=MAX_COUNT, description="requests per level excluded from stats"
    )
    seed: int = 0

    @model_validator(mode="after")
    def _positive_levels(self) -> LoadConfig:
        if any(level <= 0 for level in self.levels):
            raise ValueError("levels must be > 0")
        if self.pattern == "concurrency" and any(lv != int(lv) for lv in self.levels):
            raise ValueError("concurrency levels are whole numbers")
        return self


@dataclass(frozen=True)
class PhaseSpec:
    """One load level of a suite: its label and how its requests are scheduled."""

    label: str | None
    pattern: str = "concurrency"
    level: float | None = None
    duration_s: float | None = None
    warmup: int = 0
    seed: int = 0


class SuiteConfig(StrictModel):
    """Keys every suite has; each kind adds its own."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="label in every table")
    kind: str
    max_tokens: int = Field(default=256, ge=1, le=MAX_TOKENS)
    system: str | None = Field(default=None, description="optional system message")
    load: LoadConfig | None = None

    def phases(self) -> list[PhaseSpec]:
        """The load levels to run; one unlabelled phase when ``load`` is not given."""
        if self.load is None:
            return [PhaseSpec(label=None)]
        load = self.load
        prefix = {"concurrency": "c", "rate": "rate", "poisson": "poisson"}[load.pattern]
        return [
            PhaseSpec(
                label=f"{prefix}={level:g}",
                pattern=load.pattern,
                level=level,
                duration_s=load.duration_s,
                warmup=load.warmup,
                seed=load.seed + i,
            )
            for i, level in enumerate(load.levels)
        ]
