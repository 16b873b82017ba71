"""Is the client's clock still trustworthy? An event-loop lag and CPU monitor.

A timestamp is taken when the event loop gets round to reading a chunk. If
the loop is busy (parsing other streams, writing Parquet) or the process is not
scheduled (a loaded machine), every timestamp is late by the loop's lag, and
nothing in the data shows it. The monitor sleeps ``interval_s`` in a loop and
records how late each wake-up is, plus the process's CPU share, in 100 ms
buckets; the runner stamps each row with the worst lag seen while that request
was in flight (``loop_lag_ms``; only the part of a stall after the request
started) and the worst CPU share (``client_cpu``, for diagnosis).

``clock_ok`` is ``loop_lag_ms <= MAX_LAG_MS``. ``benchmarks/clock_health.py``
justifies it against the simulator's own write stamps, at 1 to 512 streams: no
row whose lag stayed within 5 ms had a TTFT or last-token error above 5 ms.
The CPU share is not part of the rule: in the same benchmark it never flagged
a row that lag did not (a process can be busy yet responsive, and a descheduled
one is late at low CPU). Counting only the stalls next to the timestamps the
metrics use (``window(..., stamps)``) flags fewer rows but misses saturated
ones (a backlog delays a chunk across many short stalls), so the runner does not.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BUCKET_S = 0.1  # CPU share is measured over this
LAG_BUCKET_S = 0.01  # lag samples are indexed by when the stall ended
# Past this, a row's timestamps are not trusted: the TTFT error we accept
# (benchmarks/clock_health.py: rows within it were within 5 ms of the server's stamps).
MAX_LAG_MS = 5.0


@dataclass
class ClockWindow:
    """Worst observed conditions over one request's lifetime."""

    loop_lag_ms: float
    client_cpu: float

    @property
    def trustworthy(self) -> bool:
        return self.loop_lag_ms <= MAX_LAG_MS


class LoopMonitor:
    """Samples event-loop lag and process CPU share while a run goes on."""

    def __init__(self, interval_s: float = 0.005, keep_s: float = 3600.0):
        self.interval_s = interval_s
        self._keep = int(keep_s / BUCKET_S)
        # Lag samples in arrival order, 24 bytes each (a dict of lists of tuples held
        # ~130: 20 MB over a 10-minute run): when each wake-up was due, how late it was
        # (ms), and the LAG_BUCKET_S bucket of when it ran (non-decreasing: bisectable).
        self._due = array("d")
        self._ms = array("d")
        self._bucket = array("q")
        self._cpu: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self.samples = 0
        self.max_lag_ms = 0.0
        self.max_cpu = 0.0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        cpu_then, wall_then = time.process_time(), time.perf_counter()
        while True:
            expected = time.perf_counter() + self.interval_s
            await asyncio.sleep(self.interval_s)
            now = time.perf_counter()
            lag_ms = max(0.0, (now - expected) * 1000)
            # Indexed by when the stall ended: a request can start while the loop
            # is busy (as one of the callbacks that keep the monitor waiting), so
            # a stall that began before it may still delay it.
            self._due.append(expected)
            self._ms.append(lag_ms)
            self._bucket.append(int(now / LAG_BUCKET_S))
            bucket = int(now / BUCKET_S)
            self.max_lag_ms = max(self.max_lag_ms, lag_ms)
            self.samples += 1
            if now - wall_then >= BUCKET_S:
                cpu_now = time.process_time()
                share = (cpu_now - cpu_then) / (now - wall_then)
                self._cpu[bucket] = share
                self.max_cpu = max(self.max_cpu, share)
                cpu_then, wall_then = cpu_now, now
                self._forget(now - self._keep * BUCKET_S)

    def _forget(self, before_s: float) -> None:
        cut = bisect.bisect_left(self._bucket, before_s / LAG_BUCKET_S)
        if cut > 4096 and 2 * cut > len(self._bucket):  # amortised: a memmove now and then
            del self._due[:cut], self._ms[:cut], self._bucket[:cut]
        for key in [k for k in self._cpu if k < before_s / BUCKET_S][:64]:
            del self._cpu[key]

    def window(
        self, start: float, end: float, stamps: Sequence[float] | None = None
    ) -> ClockWindow:
        """Worst lag (ms) while a request was in flight, and CPU share, between two
        ``perf_counter`` times.

        A stall is a monitor wake-up due at ``x`` that ran ``lag`` late, at ``w``.
        Only its part after ``start`` counts (``w - max(x, start)``): a stall that
        ended before the request began delays none of its timestamps (the run's
        warm-up, its deliberate gc.collect()), but a request started by a callback
        of a busy loop waits with the others.

        With ``stamps`` (the ``perf_counter`` times of the timestamps a row's
        metrics rest on: first chunk, first and last text chunk, end), a stall
        counts only if it could have delayed one of them: it began before the
        stamp (within one monitor interval: the monitor last ran then) and ended
        no more than one interval before it (``x - interval < s <= w + interval``).
        A stall between two stamps delays only intermediate chunks, which no
        metric uses (``benchmarks/clock_health.py`` measures both rules).
        """
        grace = self.interval_s
        lag = 0.0
        buckets = self._bucket
        first = bisect.bisect_left(buckets, int(start / LAG_BUCKET_S))
        last = bisect.bisect_right(buckets, int(end / LAG_BUCKET_S))
        for due, ms in zip(self._due[first:last], self._ms[first:last], strict=True):
            woke = due + ms / 1000
            in_flight = (woke - max(due, start)) * 1000
            if not (woke > start and due < end) or in_flight <= lag:
                continue
            if stamps is None or any(due - grace < s <= woke + grace for s in stamps):
                lag = in_flight
        # CPU buckets that lie within the request (a burst just before it, such
        # as a garbage collection, is not its problem).
        cpu = max(
            (
                self._cpu.get(b, 0.0)
                for b in range(int(start / BUCKET_S) + 1, int(end / BUCKET_S) + 1)
            ),
            default=0.0,
        )
        return ClockWindow(round(lag, 3), round(cpu, 3))


def metric_stamps(row: Mapping[str, Any]) -> list[float] | None:
    """``perf_counter`` times of the timestamps a row's metrics use, or None if unknown.

    TTFT and the time to first chunk end at their stamps; ITL, TPOT and output
    speed use the first and last text chunk; E2E ends at the last byte.
    """
    t0 = row.get("t0_perf_s")
    if not isinstance(t0, int | float):
        return None
    offsets = row.get("chunk_offsets_s") or []
    relative = [
        row.get("first_chunk_s"),
        row.get("ttft_s"),
        offsets[-1] if len(offsets) else None,
        row.get("e2e_s"),
    ]
    return [t0 + r for r in relative if isinstance(r, int | float)]
