"""Open-loop arrival schedules: the offsets (s) from a phase's start at which requests arrive.

Every schedule is a *unit-rate* process mapped through the phase's rate over time:

- ``rate``: constant gaps of ``1/rate``;
- ``poisson``: exponential gaps of mean ``1/rate`` (independent users);
- ``gamma`` (or ``poisson`` with ``burstiness`` other than 1): gamma-distributed gaps of
  shape ``k = burstiness`` and scale ``1/(k·rate)``, so the mean rate stays ``rate`` and the
  gaps' coefficient of variation is ``1/sqrt(k)``. This is vLLM ``bench serve
  --burstiness``'s convention: ``k = 1`` is Poisson, ``k < 1`` burstier (clumps and lulls),
  ``k > 1`` more regular (towards constant gaps);
- a **ramp** (``ramp_to``): the rate rises (or falls) linearly from ``rate`` to ``ramp_to``
  over ``duration_s``, then stays at ``ramp_to``. The unit-rate process's event times ``u``
  become ``t = Λ⁻¹(u)`` with the cumulative rate ``Λ(t) = r0·t + (r1 - r0)·t² / (2T)``
  (time rescaling: a Poisson process stays Poisson, with the ramp as its intensity);
- a **trace**: the offsets are given, one per request.

All draws come from a ``random.Random(seed)``: the same seed gives the same schedule.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator


def unit_gaps(pattern: str, burstiness: float, rng: random.Random) -> Iterator[float]:
    """Gaps of mean 1 of ``pattern`` (``rate``: all 1; ``poisson``/``gamma``: random)."""
    if pattern == "rate":
        return itertools.repeat(1.0)
    if pattern == "poisson" and burstiness == 1.0:
        return (rng.expovariate(1.0) for _ in itertools.count())
    k = burstiness
    return (rng.gammavariate(k, 1.0 / k) for _ in itertools.count())


def ramp_time(u: float, r0: float, r1: float, duration_s: float) -> float:
    """The time at which the cumulative rate of a linear ramp reaches ``u`` arrivals.

    ``Λ(t) = r0·t + (r1 - r0)·t²/(2T)`` for ``t ≤ T``, then ``Λ(T) + r1·(t - T)``.
    Solved as ``t = 2u / (r0 + sqrt(r0² + 2u(r1 - r0)/T))``, the root form that stays
    exact when ``r1 = r0`` and for a falling ramp.
    """
    total = duration_s * (r0 + r1) / 2  # Λ(T)
    if u >= total:
        return duration_s + (u - total) / r1
    if u <= 0:
        return 0.0
    slope = (r1 - r0) / duration_s
    return 2 * u / (r0 + math.sqrt(r0 * r0 + 2 * u * slope))


def schedule(
    pattern: str,
    rate: float,
    seed: int,
    *,
    burstiness: float = 1.0,
    ramp_to: float | None = None,
    duration_s: float | None = None,
) -> Iterator[float]:
    """Arrival offsets (s) from the phase start; the first arrival is at 0."""
    rng = random.Random(seed)
    if ramp_to is None:
        if pattern == "rate":
            return (i / rate for i in itertools.count())  # no accumulated rounding
        if pattern == "poisson" and burstiness == 1.0:
            # Exactly the draws the scheduler always made: old seeds keep their schedules.
            return _accumulate((rng.expovariate(rate) for _ in itertools.count()), 1.0)
        return _accumulate(unit_gaps(pattern, burstiness, rng), 1.0 / rate)
    gaps = unit_gaps(pattern, burstiness, rng)
    if duration_s is None:
        raise ValueError("a ramp needs duration_s")
    units = (float(i) for i in itertools.count()) if pattern == "rate" else _accumulate(gaps, 1.0)
    return (ramp_time(u, rate, ramp_to, duration_s) for u in units)


def _accumulate(gaps: Iterator[float], scale: float) -> Iterator[float]:
    t = 0.0
    for gap in gaps:
        yield t
        t += gap * scale
