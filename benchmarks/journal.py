"""Row journal: throughput, loss window, fsync batches and event-loop lag, against PartWriter.

Run from the repository root:  .venv/bin/python benchmarks/journal.py [--rows 5000]

Every figure is measured in this one run, the old writer (``PartWriter``: rows
buffered in memory, a Parquet part built on the caller's thread every 256 rows
or ``flush_s``) beside the journal (``JournalWriter``: one JSON line written per
row on the caller's thread, fsync and compaction in background threads):

1. writers alone: rows/s through ``add`` + close, and the time one ``add`` takes
   (its max is the stall the caller sees when a part is built);
2. loss window: time from ``add`` returning to the row being fsynced (p50/p99),
   rows per fsync batch, and the raw fsync latency of this disk;
3. event-loop lag: an asyncio loop that adds rows at a steady rate while a
   monitor sleeps 1 ms and records how late it wakes (the runner's clock health
   marks a row untrustworthy past 5 ms of lag);
4. end to end: ``harness run`` against the simulator (no delay, 16 tokens),
   requests/s and the run's own clock-health lag, journal vs PartWriter;
5. the format: JSON lines vs Arrow IPC (one record batch per row, as a journal
   must write them) — encode cost per row, bytes, read-back speed.

The machine may be shared: compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

import harness.run.session
from harness.store.journal import JournalWriter
from harness.store.parts import PartWriter, read_runs
from harness.store.schema import SCHEMA
from harness.store.segments import decode_segment, encode_row


def real_rows(tmp: Path, n: int) -> list[dict[str, Any]]:
    """``n`` rows shaped like real ones: 40 requests run against the simulator
    (64-token answers, so 64 chunk offsets each), repeated with new indices."""
    from harness.config.spec import load_config
    from harness.run.session import execute

    config = tmp / "sample.yaml"
    config.write_text(
        textwrap.dedent(
            """
            run: {name: sample, concurrency: 8}
            providers:
              - {name: sim, simulate: {ttft_ms: 0, itl_ms: 0, output_tokens: 64}}
            suites:
              - {name: s, kind: latency, prompts: ["tell me a story"], requests: 40,
                 max_tokens: 64}
            """
        )
    )
    result = execute(load_config(config), out=tmp / "sample", show_progress=False)
    template = read_runs(result.run_dir.parent).to_pylist()
    rows = []
    for i in range(n):
        row = {k: v for k, v in template[i % len(template)].items() if k != "run_id"}
        rows.append({**row, "request_index": i})
    return rows


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


class _PartSink:
    """PartWriter with the journal's ``close``, for the end-to-end comparison."""

    def __init__(self, run_dir: Path, run_id: str, *, flush_s: float = 5.0) -> None:
        self.writer = PartWriter(run_dir, run_id, flush_s=flush_s)

    @property
    def rows_written(self) -> int:
        return self.writer.rows_written

    @rows_written.setter
    def rows_written(self, value: int) -> None:
        self.writer.rows_written = value

    def add(self, row: dict[str, Any]) -> None:
        self.writer.add(row)

    def close(self) -> None:
        self.writer.flush()


# --- 1. writers alone -------------------------------------------------------------------


def writers_alone(rows: list[dict[str, Any]], tmp: Path) -> None:
    print(
        f"1. writers alone: {len(rows)} rows; a part every 256 rows (PartWriter)"
        " or 1024 (JournalWriter), their defaults"
    )
    results = {}
    for name in ("PartWriter", "JournalWriter", "PartWriter ", "JournalWriter "):
        run_dir = tmp / f"alone-{len(results)}"
        writer: Any = (
            PartWriter(run_dir, "r", flush_s=3600)
            if name.startswith("Part")
            else JournalWriter(run_dir, "r", flush_s=3600)
        )
        adds = []
        start = time.perf_counter()
        for row in rows:
            t = time.perf_counter()
            writer.add(row)
            adds.append(time.perf_counter() - t)
        added = time.perf_counter() - start
        writer.flush() if isinstance(writer, PartWriter) else writer.close()
        total = time.perf_counter() - start
        assert len(read_runs(tmp, [run_dir.name])) == len(rows)
        results[name] = len(rows) / total
        print(
            f"   {name.strip():13s} {len(rows) / total:8.0f} rows/s incl. close"
            f" ({len(rows) / added:8.0f} rows/s through add);"
            f" add p50 {pct(adds, 50) * 1e6:6.1f} µs, p99 {pct(adds, 99) * 1e6:7.1f} µs,"
            f" max {max(adds) * 1e3:6.2f} ms"
        )
    ratio = (results["JournalWriter"] + results["JournalWriter "]) / (
        results["PartWriter"] + results["PartWriter "]
    )
    print(f"   journal / PartWriter throughput: {ratio:.2f}")


# --- 2. loss window ---------------------------------------------------------------------


def loss_window(rows: list[dict[str, Any]], tmp: Path, rate: float | None) -> None:
    marks: list[tuple[int, float]] = []
    writer = JournalWriter(
        tmp / f"loss-{rate}", "r", flush_s=3600, on_durable=lambda n, t: marks.append((n, t))
    )
    added = []
    start = time.perf_counter()
    for i, row in enumerate(rows):
        if rate is not None:
            due = start + i / rate
            while time.perf_counter() < due:
                time.sleep(max(0.0, due - time.perf_counter()))
        writer.add(row)
        added.append(time.perf_counter())
    writer.close()
    waits, k = [], 0
    for i, t in enumerate(added):
        while marks[k][0] < i + 1:
            k += 1
        waits.append(marks[k][1] - t)
    batches = [b - a for (a, _), (b, _) in zip([(0, 0.0), *marks], marks, strict=False) if b > a]
    label = f"{rate:.0f} rows/s" if rate else "as fast as possible"
    print(
        f"   {label:20s} durable after p50 {pct(waits, 50) * 1e3:6.2f} ms,"
        f" p99 {pct(waits, 99) * 1e3:6.2f} ms, max {max(waits) * 1e3:6.2f} ms;"
        f" rows per fsync: mean {statistics.mean(batches):5.1f}, max {max(batches)}"
    )


def raw_fsync(row: dict[str, Any], tmp: Path, n: int = 300) -> None:
    path = tmp / "_fsync-probe"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    line = encode_row(row)
    took = []
    for _ in range(n):
        os.write(fd, line)
        t = time.perf_counter()
        os.fsync(fd)
        took.append(time.perf_counter() - t)
    os.close(fd)
    print(
        f"   raw fsync of one {len(line)}-byte line: p50 {pct(took, 50) * 1e3:.3f} ms,"
        f" p99 {pct(took, 99) * 1e3:.3f} ms, max {max(took) * 1e3:.3f} ms"
    )


# --- 3. event-loop lag ------------------------------------------------------------------


async def _lag_under(
    make: Callable[[], Any], rows: list[dict[str, Any]], rate: float
) -> list[float]:
    lags: list[float] = []
    done = asyncio.Event()

    async def monitor() -> None:
        while not done.is_set():
            expected = time.perf_counter() + 0.001
            await asyncio.sleep(0.001)
            lags.append(max(0.0, time.perf_counter() - expected))

    async def feed() -> None:
        writer = make()
        start = time.perf_counter()
        for i, row in enumerate(rows):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if writer is not None:
                writer.add(row)
        done.set()  # the final part is written after the run's loop ends: not measured
        await asyncio.sleep(0.002)
        if writer is not None:
            writer.flush() if isinstance(writer, PartWriter) else writer.close()

    await asyncio.gather(monitor(), feed())
    return lags


def loop_lag(rows: list[dict[str, Any]], tmp: Path, rate: float) -> None:
    print(f"3. event-loop lag, {len(rows)} rows added at {rate:.0f} rows/s (monitor sleeps 1 ms)")
    makers: dict[str, Callable[[], Any]] = {
        "no writer": lambda: None,
        "PartWriter": lambda: PartWriter(tmp / f"lag-part-{time.time_ns()}", "r"),
        "JournalWriter": lambda: JournalWriter(tmp / f"lag-journal-{time.time_ns()}", "r"),
    }
    lags: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(2):  # interleaved, so a busy moment of the machine hits all three
        for name, make in makers.items():
            lags[name] += asyncio.run(_lag_under(make, rows, rate))
    for name, seen in lags.items():
        over = sum(lag > 0.005 for lag in seen)
        print(
            f"   {name:13s} lag p50 {pct(seen, 50) * 1e3:5.2f} ms,"
            f" p99 {pct(seen, 99) * 1e3:6.2f} ms, max {max(seen) * 1e3:6.2f} ms;"
            f" wake-ups late by > 5 ms: {over} of {len(seen)}"
        )


# --- 4. end to end ----------------------------------------------------------------------


def end_to_end(requests: int, tmp: Path) -> None:
    from harness.config.spec import load_config
    from harness.run.session import execute

    config = tmp / "e2e.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            run: {{name: e2e, concurrency: 16, flush_s: 1.0}}
            providers:
              - {{name: sim, simulate: {{ttft_ms: 0, itl_ms: 0, output_tokens: 16}}}}
            suites:
              - {{name: s, kind: latency, prompts: ["a b c"], requests: {requests}, max_tokens: 32}}
            """
        )
    )
    spec = load_config(config)
    print(f"4. end to end: harness run, {requests} requests, 16 tokens, concurrency 16")
    rates: dict[str, list[float]] = {"PartWriter": [], "JournalWriter": []}
    for name in ("PartWriter", "JournalWriter", "PartWriter", "JournalWriter"):
        harness.run.session.JournalWriter = _PartSink if name == "PartWriter" else JournalWriter  # type: ignore[misc,assignment]
        root = tmp / f"e2e-{name}-{len(rates[name])}"
        start = time.perf_counter()
        result = execute(spec, out=root, show_progress=False)
        elapsed = time.perf_counter() - start
        rows = read_runs(root).to_pandas()
        assert len(rows) == requests
        manifest = json.loads((result.run_dir / "_manifest.json").read_text())
        clock = manifest["clock_health"]
        rates[name].append(requests / elapsed)
        print(
            f"   {name:13s} {requests / elapsed:7.0f} requests/s (whole run, simulator start"
            f" included); max loop lag {clock['max_loop_lag_ms']:6.2f} ms,"
            f" rows with clock_ok = false: {int((~rows['clock_ok'].astype(bool)).sum())}"
        )
    harness.run.session.JournalWriter = JournalWriter  # type: ignore[misc]
    ratio = statistics.mean(rates["JournalWriter"]) / statistics.mean(rates["PartWriter"])
    print(f"   journal / PartWriter requests/s: {ratio:.2f}")


# --- 5. JSON lines vs Arrow IPC ---------------------------------------------------------


def formats(rows: list[dict[str, Any]]) -> None:
    print(f"5. format: {len(rows)} rows, one record per row as a journal writes them")
    start = time.perf_counter()
    lines = [encode_row({**r, "run_id": "r"}) for r in rows]
    json_encode = (time.perf_counter() - start) / len(rows)
    data = b"".join(lines)
    start = time.perf_counter()
    table, _ = decode_segment(data, "bench")
    json_read = time.perf_counter() - start
    assert table.num_rows == len(rows)

    sink = io.BytesIO()
    start = time.perf_counter()
    with pa.ipc.new_stream(sink, SCHEMA) as stream:
        for r in rows:
            stream.write_batch(pa.RecordBatch.from_pylist([{**r, "run_id": "r"}], schema=SCHEMA))
    ipc_encode = (time.perf_counter() - start) / len(rows)
    start = time.perf_counter()
    ipc_table = pa.ipc.open_stream(sink.getvalue()).read_all()
    ipc_read = time.perf_counter() - start
    assert ipc_table.num_rows == len(rows)
    print(
        f"   JSON lines  encode {json_encode * 1e6:6.1f} µs/row,"
        f" {len(data) / len(rows):6.0f} B/row, read back {len(rows) / json_read:8.0f} rows/s"
    )
    print(
        f"   Arrow IPC   encode {ipc_encode * 1e6:6.1f} µs/row,"
        f" {sink.tell() / len(rows):6.0f} B/row, read back {len(rows) / ipc_read:8.0f} rows/s"
    )
    ratio = ipc_encode / json_encode
    print(f"   Arrow IPC / JSON lines encode cost on the caller's thread: {ratio:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=500.0, help="rows/s for the lag test")
    parser.add_argument("--e2e-requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, pyarrow {pa.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as name:  # the disk results go to
        tmp = Path(name)
        rows = real_rows(tmp, args.rows)
        line = encode_row({**rows[0], "run_id": "r"})
        print(f"rows like a real one: 64-token answers, {len(line)} bytes as a journal line")
        writers_alone(rows, tmp)
        print("2. loss window (add returned → row fsynced)")
        raw_fsync(rows[0], tmp)
        for rate in (100.0, 1000.0, None):
            loss_window(rows[: min(len(rows), 2000)], tmp, rate)
        loop_lag(rows[: int(args.rate * 5)], tmp, args.rate)
        end_to_end(args.e2e_requests, tmp)
        formats(rows[:2000])


if __name__ == "__main__":
    main()
