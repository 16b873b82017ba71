"""A simulated model's capacity: a concurrency beyond which requests queue, and a request
rate beyond which it answers 429 (what a self-hosted server and a rate-limited API do).

The truth a capacity search is tested against:

- ``max_concurrency: C``: at most C requests are served at once; the others wait, in
  arrival order, for a slot, and their whole schedule (TTFT, every token) starts when
  they get it. So the server's own TTFT grows by the wait, and with a service time S per
  request (``ttft_ms + (n - 1) · itl_ms``) it carries at most C / S requests per second;
- ``max_rps: R``: a request arriving when R requests were accepted in the last second is
  refused with HTTP 429 and a ``Retry-After`` of the time until the oldest of them leaves
  that window. Refused requests take no slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator

from harness.sim.profile import SimProfile

WINDOW_S = 1.0


class Capacity:
    """Per-model slots and rate windows of one simulator process."""

    def __init__(self) -> None:
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._accepted: dict[str, deque[float]] = {}
        self.refused = 0
        self.queued = 0  # requests that had to wait for a slot

    def refuse(self, model: str, profile: SimProfile, now: float) -> float | None:
        """None when the request is accepted (and counted); else its Retry-After (s)."""
        if profile.max_rps is None:
            return None
        window = self._accepted.setdefault(model, deque())
        while window and window[0] <= now - WINDOW_S:
            window.popleft()
        if len(window) >= profile.max_rps:
            self.refused += 1
            return max(0.001, window[0] + WINDOW_S - now)
        window.append(now)
        return None

    @contextlib.asynccontextmanager
    async def slot(self, model: str, profile: SimProfile) -> AsyncIterator[None]:
        """Hold one of the model's ``max_concurrency`` slots (none without a limit)."""
        if profile.max_concurrency is None:
            yield
            return
        slots = self._slots.get(model)
        if slots is None:
            slots = self._slots[model] = asyncio.Semaphore(profile.max_concurrency)
        if slots.locked():
            self.queued += 1
        async with slots:
            yield
