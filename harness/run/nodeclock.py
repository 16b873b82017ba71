"""A node's clock offset to the driver, from a few round trips (NTP's rule, simplified).

The driver stamps ``t_send`` (its wall clock), the node answers with its own
``t_node``, the driver stamps ``t_recv``. If the answer was taken halfway,
``offset = t_node - (t_send + t_recv) / 2``; wherever it was really taken, the error
is at most half the round trip. The round trip with the smallest RTT bounds it
best, so of several probes that one is kept: ``uncertainty = min RTT / 2``.

Durations never need this (they are measured on the node that sent the request,
with its ``perf_counter``); only absolute times that cross nodes do: a row's
``started_at`` and the moment a phase starts on every actor.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TOLERANCE_MS = 5.0
"""A node whose offset is known no better than this has its rows flagged
(``node_clock_ok = false``): the same bound as a row's loop lag (run/clock.py)."""

PROBES = 8


@dataclass(frozen=True)
class NodeClock:
    """A node's wall clock minus the driver's, and how well that is known (seconds)."""

    offset_s: float
    uncertainty_s: float

    @property
    def ok(self) -> bool:
        """Known within :data:`TOLERANCE_MS`."""
        return self.uncertainty_s * 1000 <= TOLERANCE_MS

    def to_driver(self, node_time: float) -> float:
        """A wall-clock time on the node, on the driver's clock."""
        return node_time - self.offset_s

    def manifest(self) -> dict[str, float | bool]:
        return {
            "offset_ms": round(self.offset_s * 1000, 3),
            "uncertainty_ms": round(self.uncertainty_s * 1000, 3),
            "clock_ok": self.ok,
        }


SAME_CLOCK = NodeClock(0.0, 0.0)


def estimate(samples: Sequence[tuple[float, float, float]]) -> NodeClock:
    """The offset from ``(t_send, t_node, t_recv)`` probes: that of the fastest round trip."""
    if not samples:
        raise ValueError("no clock probe")
    t_send, t_node, t_recv = min(samples, key=lambda s: s[2] - s[0])
    return NodeClock(t_node - (t_send + t_recv) / 2, (t_recv - t_send) / 2)


def measure(probe: Callable[[], float], probes: int = PROBES) -> NodeClock:
    """Call ``probe`` (the node's ``time.time()``) ``probes`` times; see :func:`estimate`."""
    samples = []
    for _ in range(probes):
        t_send = time.time()
        t_node = probe()
        samples.append((t_send, t_node, time.time()))
    return estimate(samples)
