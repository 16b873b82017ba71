"""Clock fidelity: how wrong are measured TTFT and ITL, per transport and concurrency?

Run from the repository root:  .venv/bin/python benchmarks/clock_fidelity.py

The simulator serves a profile with no jitter, so the true TTFT and ITL of every
request are known. For each transport (litellm, direct) and each number N of
concurrent streams, N requests are started at once (each one's ``t0`` is taken
when it is sent), awaited together, and this repeats for several rounds after
one unmeasured warm-up round that opens the connections. Printed per cell:
p50 and p99 of (measured TTFT − profile TTFT), of (row ITL − profile ITL), and
of each gap between two consecutive text chunks minus the profile ITL. For
the direct path, ``send`` is the p50/p99 of ``send_delay_s``: the time from the
call to the request's bytes being written, which its clock leaves out (the
litellm path's clock starts at the call, so its error includes that time).

The error includes the simulator's own lateness (it is one Python process on
the same machine, and at high N it shares the CPU with the client); nothing
here subtracts it, so these figures are an upper bound on the client's error.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from harness.providers.direct import DirectClient
from harness.providers.trace import Endpoint
from harness.providers.transport import import_litellm, send
from harness.sim import SimProcess, SimProfile
from harness.suites.base import RequestSpec

PROMPT = "Tell me a long story about the quick brown fox that jumps over the lazy dog."

SendFn = Callable[[Endpoint, RequestSpec], Awaitable[dict[str, Any]]]


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def request(i: int, tokens: int) -> RequestSpec:
    return RequestSpec(
        suite="clock",
        suite_kind="latency",
        case_id=f"c{i}",
        repeat=0,
        provider="sim",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
    )


async def measure(
    send_fn: SendFn, endpoint: Endpoint, n: int, rounds: int, tokens: int
) -> tuple[list[dict[str, Any]], float]:
    """Rows of ``rounds`` rounds of ``n`` concurrent requests, and the client CPU share."""
    await asyncio.gather(*(send_fn(endpoint, request(i, tokens)) for i in range(n)))  # warm-up
    rows: list[dict[str, Any]] = []
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        rows += await asyncio.gather(*(send_fn(endpoint, request(i, tokens)) for i in range(n)))
    share = (time.process_time() - cpu) / (time.perf_counter() - wall)
    return rows, share


async def run_path(
    path: str, api_base: str, counts: list[int], rounds: int, tokens: int, gc_freeze: bool
) -> dict[int, tuple[list[dict[str, Any]], float]]:
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
    results: dict[int, tuple[list[dict[str, Any]], float]] = {}
    if path == "direct":
        send_fn: SendFn = DirectClient().send
    else:
        litellm = import_litellm()
        # litellm warns about its own pool queueing at high N; the table shows the effect.
        logging.getLogger("LiteLLM").setLevel(logging.ERROR)

        async def via_litellm(ep: Endpoint, spec: RequestSpec) -> dict[str, Any]:
            return await send(litellm, ep, spec)

        send_fn = via_litellm
    if gc_freeze:
        # What a runner can do after its imports: the objects alive now are never
        # scanned again, so a full collection no longer walks litellm's heap.
        gc.freeze()
    for n in counts:
        results[n] = await measure(send_fn, endpoint, n, rounds, tokens)
    if isinstance(getattr(send_fn, "__self__", None), DirectClient):
        await send_fn.__self__.close()  # type: ignore[attr-defined]
    return results


def summarize(rows: list[dict[str, Any]], profile: SimProfile) -> dict[str, float] | None:
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    true_ttft, true_itl = profile.ttft_ms / 1000, profile.itl_ms / 1000
    ttft = [(r["ttft_s"] - true_ttft) * 1000 for r in ok]
    itl = [(r["itl_s"] - true_itl) * 1000 for r in ok]
    gaps = [
        (b - a - true_itl) * 1000
        for r in ok
        for a, b in zip(r["chunk_offsets_s"], r["chunk_offsets_s"][1:], strict=False)
    ]
    send = [r["send_delay_s"] * 1000 for r in ok if r.get("send_delay_s") is not None]
    return {
        "ttft_p50": percentile(ttft, 50),
        "ttft_p99": percentile(ttft, 99),
        "itl_p50": percentile(itl, 50),
        "itl_p99": percentile(itl, 99),
        "gap_p50": percentile(gaps, 50),
        "gap_p99": percentile(gaps, 99),
        "send_p50": percentile(send, 50) if send else float("nan"),
        "send_p99": percentile(send, 99) if send else float("nan"),
        "ok": len(ok),
        "errors": len(rows) - len(ok),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,32,128,512", help="comma-separated N")
    parser.add_argument("--paths", default="litellm,direct", help="litellm, direct or both")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per N")
    parser.add_argument("--ttft-ms", type=float, default=120.0)
    parser.add_argument("--itl-ms", type=float, default=15.0)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    counts = [int(n) for n in args.streams.split(",")]
    paths = [p.strip() for p in args.paths.split(",")]
    if any(p not in ("litellm", "direct") for p in paths):
        print("--paths: litellm and/or direct", file=sys.stderr)
        return 2
    profile = SimProfile(
        ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens, jitter=0.0
    )
    print(
        f"profile: TTFT {profile.ttft_ms:g} ms, ITL {profile.itl_ms:g} ms, "
        f"{profile.output_tokens} tokens, jitter 0; {args.rounds} rounds per N (+1 warm-up)"
    )
    print(
        f"errors in ms, measured − true (simulator lateness included); {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}\n"
    )
    header = (
        f"{'path':<8} {'N':>5} {'TTFT p50':>9} {'TTFT p99':>9} {'ITL p50':>8} {'ITL p99':>8} "
        f"{'gap p50':>8} {'gap p99':>8} {'send p50':>9} {'send p99':>9} {'cpu':>5} {'ok':>6} "
        f"{'err':>4}"
    )
    print(header)
    print("-" * len(header))
    with SimProcess({"clock": profile}) as sim:
        for path in paths:
            results = asyncio.run(
                run_path(path, sim.api_base, counts, args.rounds, profile.output_tokens)
            )
            for n, (rows, cpu) in results.items():
                s = summarize(rows, profile)
                if s is None:
                    print(f"{path:<8} {n:>5}  every request failed: {rows[0]['error_message']}")
                    continue
                print(
                    f"{path:<8} {n:>5} {s['ttft_p50']:>9.2f} {s['ttft_p99']:>9.2f} "
                    f"{s['itl_p50']:>8.3f} {s['itl_p99']:>8.3f} {s['gap_p50']:>8.2f} "
                    f"{s['gap_p99']:>8.2f} {s['send_p50']:>9.2f} {s['send_p99']:>9.2f} {cpu:>5.0%} "
                    f"{s['ok']:>6.0f} {s['errors']:>4.0f}"
                )
    print("\ncpu: client process CPU time / wall time over the measured rounds")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
