"""Clock health: does ``clock_ok`` flag exactly the rows whose timestamps are wrong?

Run from the repository root:  .venv/bin/python benchmarks/clock_health.py

The simulator (no jitter) stamps, on the host's monotonic clock, when it wrote
each request's first and last text chunk (``/sim/timings``). A row's client
error is how long after that write the client timestamped the chunk:
``t0 + ttft_s - first_sent`` for TTFT and ``t0 + last text offset - last_sent``
for the last token (which ITL, TPOT and E2E rest on). Requests go through the
harness's own runner (``run_phases``: warm-up, gc.collect(), the loop monitor,
per-row ``loop_lag_ms``/``client_cpu``/``clock_ok``), closed loop at N
concurrent streams, one fresh process per transport.

Printed per transport and N: the share of rows flagged (``clock_ok`` false) by
each rule, the share whose TTFT error exceeds the bound, and the confusion matrix
(flagged & over, flagged & within, unflagged & over, unflagged & within), against
the TTFT error and against the row's worst stamp error (TTFT or last token).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from harness.request import RequestSpec
from harness.sim import SimProcess, SimProfile

PROMPT = "Tell me a long story about the quick brown fox that jumps over the lazy dog."
PATHS = ("direct", "litellm")
Rule = Callable[[dict[str, Any]], bool]  # True: the row is flagged


def rules() -> dict[str, Rule]:
    """Candidate flags. ``loop_lag_ms``: the row's worst in-flight lag (the runner's
    rule is ``loop_lag_ms > 5``); ``stamp_lag_ms``: only the stalls next to a timestamp
    the metrics use; ``runner``: the row's own ``clock_ok``."""
    return {
        "lag>5|cpu>90%": lambda r: r["loop_lag_ms"] > 5.0 or r["client_cpu"] > 0.9,
        "lag>2": lambda r: r["loop_lag_ms"] > 2.0,
        "lag>5": lambda r: r["loop_lag_ms"] > 5.0,
        "lag>10": lambda r: r["loop_lag_ms"] > 10.0,
        "cpu>90%": lambda r: r["client_cpu"] > 0.9,
        "stamps>5": lambda r: r["stamp_lag_ms"] > 5.0,
        "runner": lambda r: not r["clock_ok"],
    }


# --- the worker: one transport, every N, through the harness runner -------------------


async def _worker(path: str, api_base: str, args: argparse.Namespace) -> None:
    import harness.run.scheduler
    from harness.providers.direct import DirectClient
    from harness.providers.litellm import import_litellm, send
    from harness.providers.trace import Endpoint
    from harness.run.clock import ClockWindow, LoopMonitor, metric_stamps
    from harness.run.scheduler import Phase, run_phases

    class Recording(LoopMonitor):
        """The runner's monitor, remembering the last window it was asked for."""

        last: tuple[LoopMonitor, float, float] | None = None

        def __init__(self) -> None:
            super().__init__(interval_s=args.interval_ms / 1000)

        def window(
            self, start: float, end: float, stamps: Sequence[float] | None = None
        ) -> ClockWindow:
            Recording.last = (self, start, end)
            return super().window(start, end, stamps)

    # The runner stamps a row and hands it to the sink with no await in between.
    harness.run.scheduler.LoopMonitor = Recording  # type: ignore[misc]

    endpoint = Endpoint("sim", "openai/clock", True, api_base, "sim-no-key", {}, 300.0, path)
    client = DirectClient()
    litellm = import_litellm() if path == "litellm" else None
    ids = itertools.count()

    async def send_one(request: RequestSpec) -> dict[str, Any]:
        # A "user" makes the simulator record when it wrote the first and last token.
        user = f"{path}-{next(ids)}"
        if path == "direct":
            row: dict[str, Any] = await client.send(
                endpoint, replace(request, extra={"user": user})
            )
        else:
            extra = {"extra_body": {"user": user}}
            row = await send(litellm, endpoint, replace(request, extra=extra))
        row["user"] = user
        return row

    timings_url = api_base.removesuffix("/v1") + "/sim/timings"
    for n in (int(x) for x in args.streams.split(",")):
        requests = [
            RequestSpec(
                "clock",
                "latency",
                "c0",
                i,
                "sim",
                [{"role": "user", "content": PROMPT}],
                args.tokens,
            )
            for i in range(max(n * args.rounds, args.min_requests))
        ]
        rows: list[dict[str, Any]] = []

        def sink(row: dict[str, Any]) -> None:
            assert Recording.last is not None
            monitor, start, end = Recording.last
            row["stamp_lag_ms"] = monitor.window(start, end, metric_stamps(row)).loop_lag_ms
            rows.append(row)

        await run_phases(
            [Phase("sim", requests, "concurrency", float(n))],
            send_one,
            sink,
            concurrency=n,
            provider_concurrency={},
            warmup_requests=1,
        )
        async with aiohttp.ClientSession() as session, session.get(timings_url) as response:
            served = await response.json()
        for r in rows:
            stamps = served.get(r["user"]) or {}
            if r["status"] != "ok" or stamps.get("first_sent") is None:
                continue
            t0 = r["t0_perf_s"]
            out = {
                "n": n,
                "loop_lag_ms": r["loop_lag_ms"],
                "stamp_lag_ms": r["stamp_lag_ms"],
                "client_cpu": r["client_cpu"],
                "clock_ok": r["clock_ok"],
                "ttft_err_ms": (t0 + r["ttft_s"] - stamps["first_sent"]) * 1000,
                "last_err_ms": (t0 + r["chunk_offsets_s"][-1] - stamps["last_sent"]) * 1000,
            }
            print(json.dumps(out), flush=True)
    await client.close()


# --- the parent: simulator, one worker per transport, tables --------------------------


def _pin(pid: int, cpu: int) -> None:
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {cpu})


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def confusion(
    rows: list[dict[str, Any]], flag: Rule, over: Callable[[dict[str, Any]], bool]
) -> str:
    """``flagged&over flagged&within unflagged&over unflagged&within`` counts."""
    cells = [0, 0, 0, 0]
    for r in rows:
        cells[(0 if flag(r) else 2) + (0 if over(r) else 1)] += 1
    return " ".join(f"{c:>5}" for c in cells)


def report(path: str, rows: list[dict[str, Any]], bound_ms: float) -> None:
    def ttft_over(r: dict[str, Any]) -> bool:
        return bool(r["ttft_err_ms"] > bound_ms)

    def any_over(r: dict[str, Any]) -> bool:
        return bool(max(r["ttft_err_ms"], r["last_err_ms"]) > bound_ms)

    def pct(k: int, n: int) -> str:
        return f"{k / n:>6.1%}" if n else "     -"

    for n, group in itertools.groupby(rows, key=lambda r: r["n"]):
        g = list(group)
        ttft = sorted(r["ttft_err_ms"] for r in g)
        worst = max(r["loop_lag_ms"] for r in g)
        print(
            f"\n{path} N={n}: {len(g)} rows; TTFT error p50 {ttft[len(ttft) // 2]:.2f} ms,"
            f" max {ttft[-1]:.2f} ms; worst row lag {worst:.1f} ms;"
            f" over {bound_ms:g} ms: TTFT {pct(sum(map(ttft_over, g)), len(g))},"
            f" TTFT or last token {pct(sum(map(any_over, g)), len(g))}"
        )
        print(
            f"  {'rule':<15} {'flagged':>7} | vs TTFT error: {'F&O':>5} {'F&W':>5} {'U&O':>5}"
            f" {'U&W':>5} | vs worst stamp: {'F&O':>5} {'F&W':>5} {'U&O':>5} {'U&W':>5}"
        )
        for name, flag in rules().items():
            flagged = sum(map(flag, g))
            print(
                f"  {name:<15} {pct(flagged, len(g)):>7} | {'':>14} {confusion(g, flag, ttft_over)}"
                f" | {'':>15} {confusion(g, flag, any_over)}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,32,128,512", help="comma-separated N")
    parser.add_argument("--paths", default="direct", help="direct and/or litellm")
    parser.add_argument("--rounds", type=int, default=3, help="requests per stream")
    parser.add_argument("--min-requests", type=int, default=60, help="at least this many per N")
    parser.add_argument("--bound-ms", type=float, default=5.0, help="the TTFT error we accept")
    parser.add_argument("--ttft-ms", type=float, default=120.0)
    parser.add_argument("--itl-ms", type=float, default=15.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--interval-ms", type=float, default=5.0, help="the monitor's sleep")
    parser.add_argument("--pin", action="store_true", help="client on CPU 0, simulator on CPU 1")
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args.worker, args.api_base, args))
        return 0
    interval_ms = args.interval_ms
    profile = SimProfile(
        ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens, jitter=0.0
    )
    print(
        f"profile: TTFT {profile.ttft_ms:g} ms, ITL {profile.itl_ms:g} ms, {profile.output_tokens}"
        f" tokens; bound {args.bound_ms:g} ms; monitor interval {interval_ms:g} ms;"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f};"
        f" pinned: {'yes' if args.pin else 'no'}"
    )
    print(
        "F&O flagged & over the bound, F&W flagged & within,"
        " U&O unflagged & over, U&W unflagged & within"
    )
    with SimProcess({"clock": profile}) as sim:
        if args.pin:
            (sim_pid,) = _children()
            _pin(sim_pid, 1)
        for path in (p.strip() for p in args.paths.split(",")):
            cmd = [sys.executable, __file__, "--worker", path, "--api-base", sim.api_base]
            for name in ("streams", "rounds", "min_requests", "tokens", "interval_ms"):
                cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as worker:
                if args.pin:
                    _pin(worker.pid, 0)
                assert worker.stdout is not None
                rows = [json.loads(line) for line in worker.stdout]
            if worker.returncode:
                print(f"{path} worker failed (exit {worker.returncode})", file=sys.stderr)
                return 1
            report(path, rows, args.bound_ms)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
