"""Clock health speaks of measured rows: what warm-ups and gc.collect() saw is nobody's latency.

Real event loops and real stalls (``time.sleep`` blocks the loop); the runner is
driven directly with a tiny send function. Lower bounds strict, upper bounds generous.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from harness.request import RequestSpec
from harness.run.clock import LoopMonitor, metric_stamps
from harness.run.scheduler import Phase, run_phases
from harness.run.session import clock_warning

WARMUP_STALL_S = 0.4


def _block_loop(seconds: float) -> None:
    """Stall the event loop on purpose (what a gc pass or heavy parsing does)."""
    time.sleep(seconds)


def _request(i: int, *, warmup: bool = False) -> RequestSpec:
    return RequestSpec(
        "s", "latency", f"c{i}", 0, "p", [{"role": "user", "content": "x"}], 8, warmup=warmup
    )


async def _send(request: RequestSpec) -> dict[str, Any]:
    """A request that streams for ~30 ms; warm-ups (both kinds) block the loop first."""
    if request.warmup:
        _block_loop(WARMUP_STALL_S)
    t0 = time.perf_counter()
    await asyncio.sleep(0.01)
    ttft = time.perf_counter() - t0
    await asyncio.sleep(0.02)
    last = time.perf_counter() - t0
    return {
        "status": "ok",
        "warmup": request.warmup,
        "t0_perf_s": t0,
        "ttft_s": ttft,
        "first_chunk_s": ttft,
        "chunk_offsets_s": [ttft, last],
        "e2e_s": time.perf_counter() - t0,
    }


def test_warning_counts_and_quotes_only_measured_rows() -> None:
    rows: list[dict[str, Any]] = []
    # The plan's own warm-up row (as a latency suite's `load.warmup` makes) comes first;
    # the runner's unrecorded warm-up runs before it. Both stall the loop for 400 ms.
    phase = Phase("p", [_request(0, warmup=True)] + [_request(i) for i in range(1, 7)])
    outcome = asyncio.run(
        run_phases([phase], _send, rows.append, concurrency=1, provider_concurrency={})
    )
    measured = [r for r in rows if not r["warmup"]]
    assert len(rows) == 7 and len(measured) == 6
    assert outcome.measured == 6  # the warm-up row is stored but not counted
    # The monitor saw the 400 ms stalls (minus at most one 5 ms interval) ...
    assert outcome.clock["whole_run_max_loop_lag_ms"] >= 1000 * WARMUP_STALL_S - 10
    # ... and none of them landed in a measured request's window.
    worst = max(r["loop_lag_ms"] for r in measured)
    assert worst < 1000 * WARMUP_STALL_S * 0.75
    assert outcome.clock["max_loop_lag_ms"] == worst
    assert outcome.untrustworthy == sum(not r["clock_ok"] for r in measured)

    # Force a flagged measured row, so the warning is printed, and read its figures.
    outcome.untrustworthy = max(outcome.untrustworthy, 1)
    warning = clock_warning(outcome)
    assert warning is not None
    match = re.match(r"(\d+) of (\d+) measured requests", warning)
    assert match and (int(match[1]), int(match[2])) == (outcome.untrustworthy, 6)
    assert f"lag up to {worst:.1f} ms" in warning
    assert f"{outcome.clock['whole_run_max_loop_lag_ms']:.1f}" not in warning


def test_a_stall_counts_only_if_it_could_delay_a_stamp_the_metrics_use() -> None:
    async def scenario() -> tuple[float, float, float, float, float]:
        monitor = LoopMonitor()
        monitor.start()
        await asyncio.sleep(0.05)
        _block_loop(0.1)  # before the request: it cannot delay anything in it
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        first = time.perf_counter()  # the first token's stamp
        await asyncio.sleep(0.05)
        _block_loop(0.1)  # mid-stream, between the stamps: delays only middle chunks
        await asyncio.sleep(0.05)
        _block_loop(0.1)  # just before the last token: that stamp waited behind it
        last = time.perf_counter()
        await asyncio.sleep(0.01)
        end = time.perf_counter()
        # A request started by one callback of a busy loop: the stall began before
        # it and went on after it started; the part after its start counts.
        _block_loop(0.05)
        busy_start = time.perf_counter()
        _block_loop(0.1)
        await asyncio.sleep(0.01)
        busy_end = time.perf_counter()
        await monitor.stop()
        busy = monitor.window(busy_start, busy_end).loop_lag_ms
        before = monitor.window(start, end, [first, end]).loop_lag_ms
        whole = monitor.window(start, end).loop_lag_ms
        middle_only = monitor.window(start, last - 0.07, [first]).loop_lag_ms
        at_last = monitor.window(start, end, [first, last, end]).loop_lag_ms
        return before, whole, middle_only, at_last, busy

    before, whole, middle_only, at_last, busy = asyncio.run(scenario())
    # A 100 ms block seen by a 5 ms monitor is at least 95 ms late; the one before
    # the request and the mid-stream one are not charged to the first/end stamps.
    assert whole >= 90
    assert at_last >= 90
    assert middle_only < 50 and before < 50
    assert busy >= 90  # 100 ms of the stall lay after the request's start


def test_metric_stamps_are_the_row_timestamps_on_the_host_clock() -> None:
    row = {
        "t0_perf_s": 10.0,
        "first_chunk_s": 0.1,
        "ttft_s": 0.25,
        "chunk_offsets_s": [0.25, 0.5],
        "e2e_s": 0.75,
    }
    # 10.0 + each offset: first chunk, first text, last text, end.
    assert metric_stamps(row) == [10.1, 10.25, 10.5, 10.75]
    assert metric_stamps({"ttft_s": 0.1}) is None  # no clock start: the whole window counts
    assert metric_stamps({"t0_perf_s": 1.0, "e2e_s": 0.5, "chunk_offsets_s": []}) == [1.5]
