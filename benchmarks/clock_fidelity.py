"""Clock fidelity: how wrong are measured TTFT and ITL, per transport and concurrency?

Run from the repository root:  .venv/bin/python benchmarks/clock_fidelity.py

The simulator serves a profile with no jitter, so the true TTFT and ITL of every
request are known. For each transport (litellm, direct) and each number N of
concurrent streams, N requests are started at once (each one's ``t0`` is taken
when it is sent), awaited together, and this repeats for several rounds after
one unmeasured warm-up round that opens the connections. Each transport runs in
a fresh process, so that one's imports do not slow the other (with litellm
imported, one full garbage-collection pass takes ~180 ms here).

Printed per cell, in ms: p50 and p99 of (measured TTFT − profile TTFT), of (the
row's ITL − profile ITL), and of each gap between two consecutive text chunks
minus the profile ITL; for the direct path, ``send`` is the p50/p99 of
``send_delay_s``, the time from the call to the request's bytes being written,
which its clock leaves out (the litellm path's clock starts at the call, so its
error includes that time); ``cpu`` is the client's CPU time / wall time.

The TTFT/ITL columns include the simulator's own lateness (one Python process
on the same machine, with a backlog when N requests arrive at once), so they are
an upper bound on the client's error. The simulator also stamps, on the host's
monotonic clock, when it wrote each request's first token: ``client`` is how
long after that write the client timestamped the token (the client's own TTFT
error: wire, reading, its event loop), ``server`` is how late the simulator
wrote it against the profile (the fixture's error).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp

from harness.request import RequestSpec
from harness.sim import SimProcess, SimProfile

PROMPT = "Tell me a long story about the quick brown fox that jumps over the lazy dog."
PATHS = ("litellm", "direct")
COLUMNS = (
    ("ttft_p50", "TTFT p50", 9, ".2f"),
    ("ttft_p99", "TTFT p99", 9, ".2f"),
    ("itl_p50", "ITL p50", 8, ".3f"),
    ("itl_p99", "ITL p99", 8, ".3f"),
    ("gap_p50", "gap p50", 8, ".2f"),
    ("gap_p99", "gap p99", 8, ".2f"),
    ("send_p50", "send p50", 9, ".2f"),
    ("send_p99", "send p99", 9, ".2f"),
    ("client_p50", "client p50", 11, ".2f"),
    ("client_p99", "client p99", 11, ".2f"),
    ("server_p50", "server p50", 11, ".2f"),
    ("server_p99", "server p99", 11, ".2f"),
    ("cpu", "cpu", 5, ".0%"),
    ("ok", "ok", 6, ".0f"),
    ("errors", "err", 4, ".0f"),
)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(rows: list[dict[str, Any]], ttft_s: float, itl_s: float) -> dict[str, Any]:
    """Error percentiles (ms) over the successful rows."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return {"ok": 0, "errors": len(rows), "message": rows[0]["error_message"]}
    ttft = [(r["ttft_s"] - ttft_s) * 1000 for r in ok]
    itl = [(r["itl_s"] - itl_s) * 1000 for r in ok]
    gaps = [
        (b - a - itl_s) * 1000
        for r in ok
        for a, b in zip(r["chunk_offsets_s"], r["chunk_offsets_s"][1:], strict=False)
    ]
    send = [r["send_delay_s"] * 1000 for r in ok if r.get("send_delay_s") is not None]
    # With the simulator's own stamps (same monotonic clock on this host): how late
    # the client timestamped the first token after the server wrote it (the
    # client's error), and how late the server wrote it (the fixture's error).
    stamped = [r for r in ok if r.get("first_sent") is not None and r.get("t0_perf_s")]
    client = [(r["t0_perf_s"] + r["ttft_s"] - r["first_sent"]) * 1000 for r in stamped]
    server = [(r["first_sent"] - r["t0_perf_s"] - ttft_s) * 1000 for r in stamped]
    return {
        "client_p50": percentile(client, 50) if client else None,
        "client_p99": percentile(client, 99) if client else None,
        "server_p50": percentile(server, 50) if server else None,
        "server_p99": percentile(server, 99) if server else None,
        "ttft_p50": percentile(ttft, 50),
        "ttft_p99": percentile(ttft, 99),
        "itl_p50": percentile(itl, 50),
        "itl_p99": percentile(itl, 99),
        "gap_p50": percentile(gaps, 50),
        "gap_p99": percentile(gaps, 99),
        "send_p50": percentile(send, 50) if send else None,
        "send_p99": percentile(send, 99) if send else None,
        "ok": len(ok),
        "errors": len(rows) - len(ok),
    }


# --- the worker: one transport, every N --------------------------------------------


async def _worker(path: str, api_base: str, args: argparse.Namespace) -> None:
    """Measure one transport at every N; print one JSON line per N."""
    from harness.providers.direct import DirectClient
    from harness.providers.litellm import import_litellm, send
    from harness.providers.trace import Endpoint

    endpoint = Endpoint(
        provider="sim",
        model="openai/clock",
        simulated=True,
        api_base=api_base,
        api_key="sim-no-key",
        params={},
        timeout_s=300.0,
        transport=path,
    )
    spec = RequestSpec(
        suite="clock",
        suite_kind="latency",
        case_id="c0",
        repeat=0,
        provider="sim",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=args.tokens,
    )
    client = DirectClient()
    ids = itertools.count()
    send_one: Callable[[RequestSpec], Awaitable[dict[str, Any]]]
    if path == "direct":

        def send_one(request: RequestSpec) -> Awaitable[dict[str, Any]]:
            return client.send(endpoint, request)

    else:
        litellm = import_litellm()
        # litellm warns about its own pool queueing at high N; the table shows the effect.
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)

        def send_one(request: RequestSpec) -> Awaitable[dict[str, Any]]:
            return send(litellm, endpoint, request)

    async def one() -> dict[str, Any]:
        # A "user" makes the simulator record when it received the request and
        # wrote its first token.
        user = f"{path}-{next(ids)}"
        row = await send_one(replace(spec, extra={"user": user}))
        row["user"] = user
        return row

    timings_url = api_base.removesuffix("/v1") + "/sim/timings"

    async def with_server_times(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(timings_url) as response:
            served = await response.json()
        for row in rows:
            row["first_sent"] = (served.get(row["user"]) or {}).get("first_sent")
        return rows

    if args.gc_freeze:
        # What a runner can do after its imports: the objects alive now are never
        # scanned again, so a full collection no longer walks litellm's heap.
        gc.freeze()
    for n in (int(x) for x in args.streams.split(",")):
        await asyncio.gather(*(one() for _ in range(n)))  # warm-up: open the connections
        rows: list[dict[str, Any]] = []
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(args.rounds):
            rows += await asyncio.gather(*(one() for _ in range(n)))
        await with_server_times(rows)
        share = (time.process_time() - cpu) / (time.perf_counter() - wall)
        result = summarize(rows, args.ttft_ms / 1000, args.itl_ms / 1000)
        print(json.dumps({"n": n, "cpu": share, **result}), flush=True)
    await client.close()


# --- the parent: simulator, one worker per transport, table -------------------------


def _pin(pid: int, cpu: int) -> None:
    """Keep a process on one CPU (when there are two or more).

    Left alone, Linux tends to wake a loopback reader on its writer's CPU, so
    the client and the simulator can end up sharing one core.
    """
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {cpu})


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,32,128,512", help="comma-separated N")
    parser.add_argument("--paths", default=",".join(PATHS), help="litellm, direct or both")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per N")
    parser.add_argument("--ttft-ms", type=float, default=120.0)
    parser.add_argument("--itl-ms", type=float, default=15.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() after imports, as a runner could"
    )
    parser.add_argument(
        "--pin", action="store_true", help="client on CPU 0, simulator on CPU 1 (as a runner could)"
    )
    parser.add_argument("--worker", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args.worker, args.api_base, args))
        return 0
    paths = [p.strip() for p in args.paths.split(",")]
    if any(p not in PATHS for p in paths):
        print("--paths: litellm and/or direct", file=sys.stderr)
        return 2

    profile = SimProfile(
        ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens, jitter=0.0
    )
    print(
        f"profile: TTFT {profile.ttft_ms:g} ms, ITL {profile.itl_ms:g} ms, "
        f"{profile.output_tokens} tokens, jitter 0; {args.rounds} rounds per N (+1 warm-up); "
        f"gc.freeze: {'yes' if args.gc_freeze else 'no'}; pinned: {'yes' if args.pin else 'no'}"
    )
    print(
        f"errors in ms, measured − true (simulator lateness included); {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    header = f"{'path':<8} {'N':>5} " + " ".join(f"{t:>{w}}" for _, t, w, _ in COLUMNS)
    print(header)
    print("-" * len(header))
    with SimProcess({"clock": profile}) as sim:
        if args.pin:
            (sim_pid,) = _children()
            _pin(sim_pid, 1)
        for path in paths:
            cmd = [sys.executable, __file__, "--worker", path, "--api-base", sim.api_base]
            for name in ("streams", "rounds", "ttft_ms", "itl_ms", "tokens"):
                cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            cmd += ["--gc-freeze"] if args.gc_freeze else []
            with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) as worker:
                if args.pin:
                    _pin(worker.pid, 0)
                assert worker.stdout is not None
                for line in worker.stdout:
                    r = json.loads(line)
                    if not r["ok"]:
                        print(f"{path:<8} {r['n']:>5}  every request failed: {r['message']}")
                        continue
                    cells = " ".join(
                        f"{r[key]:>{w}{fmt}}" if r[key] is not None else f"{'-':>{w}}"
                        for key, _, w, fmt in COLUMNS
                    )
                    print(f"{path:<8} {r['n']:>5} {cells}", flush=True)
            if worker.returncode:
                print(f"{path} worker failed (exit {worker.returncode})", file=sys.stderr)
                return 1
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
