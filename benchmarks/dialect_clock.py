"""Client clock error per dialect and path, against the simulator's own write stamps.

Run from the repository root:  .venv/bin/python benchmarks/dialect_clock.py

Paths: ``direct-openai`` (the direct client, OpenAI dialect), ``native-anthropic``
(harness/providers/anthropic.py, Anthropic Messages dialect),
``litellm-anthropic`` (litellm.acompletion on the same dialect),
``native-gemini`` (harness/providers/gemini.py, Gemini streamGenerateContent),
``litellm-gemini`` (litellm.acompletion on that dialect) and, with ``--paths``,
``litellm-openai`` (litellm through the OpenAI SDK). Each runs in a
fresh process (one path's imports must not slow another's garbage collection).
For each number N of concurrent streams, N requests are started at once,
awaited together, for several rounds after one unmeasured warm-up round.

The simulator stamps (on the host's monotonic clock, which the client shares)
when it wrote each request's first and last text event. Printed in ms:

- ``TTFT`` client error: (the client's t0 + its TTFT) − the first text's write;
- ``last`` client error: the same at the last text event;
- ``ITL`` client error: the row's ITL − (last write − first write) / (tokens − 1).

litellm is timed at the socket (harness/providers/socket_stamps.py: the write,
and each chunk at the arrival of the latest block litellm read); ``clock`` in
the table says which clock each path's rows used (``call``: litellm's fallback,
t0 at the call and chunks when parsed, as before the socket stamps).

Then ``chunks/s``: each path reads 32 streams of a profile with no delays (the
whole answer in one write), and its text chunks per second of wall time are
given as a ratio to a bare aiohttp client (``iter_any`` + line split, no JSON)
reading the same dialect right after it, in the same worker process.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import logging
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp

from harness.request import RequestSpec
from harness.sim import SimProcess, SimProfile

PROMPT = "Tell me a long story about the quick brown fox that jumps over the lazy dog."
PATHS = (
    "direct-openai",
    "native-anthropic",
    "litellm-anthropic",
    "native-gemini",
    "litellm-gemini",
)
MODEL = {
    "direct-openai": ("openai/clock", "direct"),
    "native-anthropic": ("anthropic/clock", "anthropic"),
    "litellm-anthropic": ("anthropic/clock", "litellm"),
    "native-gemini": ("gemini/clock", "gemini"),
    "litellm-gemini": ("gemini/clock", "litellm"),
    "litellm-openai": ("openai/clock", "litellm"),  # not in the default run: --paths
}


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, round(q / 100 * len(ordered) + 0.5))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Client error percentiles (ms) over the successful, stamped rows."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("first_sent") is not None]
    if not ok:
        return {"ok": 0, "errors": len(rows), "message": rows[0]["error_message"]}
    ttft = [(r["t0_perf_s"] + r["ttft_s"] - r["first_sent"]) * 1000 for r in ok]
    last = [(r["t0_perf_s"] + r["chunk_offsets_s"][-1] - r["last_sent"]) * 1000 for r in ok]
    itl = [
        (r["itl_s"] - (r["last_sent"] - r["first_sent"]) / (r["visible_tokens"] - 1)) * 1000
        for r in ok
    ]
    out: dict[str, Any] = {"ok": len(ok), "errors": len(rows) - len(ok)}
    out["clock"] = ",".join(sorted({str(r.get("clock")) for r in ok}))
    for name, values in (("ttft", ttft), ("last", last), ("itl", itl)):
        out[f"{name}_p50"] = percentile(values, 50)
        out[f"{name}_p99"] = percentile(values, 99)
    return out


class _Sender:
    """One path's client, sending to one simulated model at a time."""

    def __init__(self, path: str, api_base: str) -> None:
        self.path, self.api_base = path, api_base
        self.client: Any = None
        self.litellm: Any = None
        transport = MODEL[path][1]
        if transport == "direct":
            from harness.providers.direct import DirectClient

            self.client = DirectClient()
        elif transport == "anthropic":
            from harness.providers.anthropic import AnthropicClient

            self.client = AnthropicClient()
        elif transport == "gemini":
            from harness.providers.gemini import GeminiClient

            self.client = GeminiClient()
        else:
            from harness.providers.litellm import import_litellm

            self.litellm = import_litellm()
            logging.getLogger("LiteLLM").setLevel(logging.ERROR)

    def to(self, profile: str) -> Callable[[RequestSpec], Awaitable[dict[str, Any]]]:
        """A sender for the simulator's ``profile`` (the model's name after the prefix)."""
        from harness.providers.trace import Endpoint

        prefix, transport = MODEL[self.path][0].split("/")[0], MODEL[self.path][1]
        endpoint = Endpoint(
            provider="sim",
            model=f"{prefix}/{profile}",
            simulated=True,
            api_base=self.api_base,
            api_key="sim-no-key",
            params={},
            timeout_s=300.0,
            transport=transport,
        )
        if self.client is not None:
            client = self.client
            return lambda r: client.send(endpoint, r)
        from harness.providers.litellm import send

        litellm = self.litellm
        return lambda r: send(litellm, endpoint, r)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def _spec(tokens: int) -> RequestSpec:
    return RequestSpec(
        suite="clock",
        suite_kind="latency",
        case_id="c0",
        repeat=0,
        provider="sim",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
    )


async def _bare(dialect: str, api_base: str, n: int, rounds: int, tokens: int) -> float:
    """Text chunks per second a bare aiohttp client reads (no JSON, a line count)."""
    root = api_base.removesuffix("/v1")
    messages = [{"role": "user", "content": PROMPT}]
    if dialect == "openai":
        url, marker = root + "/v1/chat/completions", "data: {"
        body: dict[str, Any] = {"model": "bulk", "messages": messages, "stream": True}
        body["max_tokens"] = tokens
    elif dialect == "gemini":
        url, marker = root + "/v1/models/bulk:streamGenerateContent?alt=sse", "data: {"
        body = {
            "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
            "generationConfig": {"maxOutputTokens": tokens},
        }
    else:
        url, marker = root + "/v1/messages", 'data: {"type": "content_block_delta"'
        body = {"model": "bulk", "messages": messages, "stream": True, "max_tokens": tokens}
    headers = {"Accept-Encoding": "identity", "x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with aiohttp.ClientSession() as session:

        async def one() -> int:
            count, tail = 0, ""
            async with session.post(url, json=body, headers=headers) as response:
                async for raw in response.content.iter_any():
                    lines = (tail + raw.decode()).split("\n")
                    tail = lines.pop()
                    count += sum(1 for line in lines if line.startswith(marker))
            return count

        await asyncio.gather(*(one() for _ in range(n)))
        wall = time.perf_counter()
        chunks = 0
        for _ in range(rounds):
            chunks += sum(await asyncio.gather(*(one() for _ in range(n))))
        return chunks / (time.perf_counter() - wall)


async def _worker(path: str, api_base: str, args: argparse.Namespace) -> None:
    """One path: one JSON line per N, then one with its chunks/s."""
    sender = _Sender(path, api_base)
    send_one = sender.to("clock")
    spec = _spec(args.tokens)
    ids = itertools.count()

    async def one(request: RequestSpec) -> dict[str, Any]:
        user = f"{path}-{next(ids)}"  # the simulator stamps requests that name a user
        # litellm drops ``user`` from an OpenAI request; extra_body gets it through.
        extra: dict[str, Any] = (
            {"extra_body": {"user": user}} if path == "litellm-openai" else {"user": user}
        )
        if path.endswith("gemini"):  # Gemini has no user field: a header names the request
            extra["extra_headers"] = {"x-sim-user": user}
        row = await send_one(replace(request, extra=extra))
        row["user"] = user
        return row

    timings_url = api_base.removesuffix("/v1") + "/sim/timings"

    async def stamped(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(timings_url) as response:
            served = await response.json()
        for row in rows:
            stamps = served.get(row["user"]) or {}
            row["first_sent"], row["last_sent"] = stamps.get("first_sent"), stamps.get("last_sent")
        return rows

    gc.freeze()  # as the runner does after its imports
    for n in (int(x) for x in args.streams.split(",")):
        await asyncio.gather(*(one(spec) for _ in range(n)))  # warm-up: open connections
        await stamped([])
        rows: list[dict[str, Any]] = []
        for _ in range(args.rounds):
            rows += await asyncio.gather(*(one(spec) for _ in range(n)))
        print(json.dumps({"n": n, **summarize(await stamped(rows))}), flush=True)
    # Capacity: the bulk profile (no delays), 32 streams.
    bulk, send_bulk = _spec(args.bulk_tokens), sender.to("bulk")
    await asyncio.gather(*(send_bulk(bulk) for _ in range(32)))
    wall = time.perf_counter()
    chunks = 0
    for _ in range(args.rounds):
        chunks += sum(
            r["text_chunks"] for r in await asyncio.gather(*(send_bulk(bulk) for _ in range(32)))
        )
    rate = chunks / (time.perf_counter() - wall)
    await sender.close()
    # The bare client on the same dialect, in this process, right after: the
    # machine's load is shared with other work, so only a baseline measured
    # next to the path makes a ratio.
    dialect = path.split("-")[-1]
    bare = await _bare(dialect, api_base, 32, args.rounds, args.bulk_tokens)
    print(json.dumps({"chunks_per_s": rate, "bare_chunks_per_s": bare}), flush=True)


def _run_worker(path: str, api_base: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    cmd = [sys.executable, __file__, "--worker", path, "--api-base", api_base]
    for name in ("streams", "rounds", "ttft_ms", "itl_ms", "tokens", "bulk_tokens"):
        cmd += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="1,8,32,128", help="comma-separated N")
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per N")
    parser.add_argument("--ttft-ms", type=float, default=120.0)
    parser.add_argument("--itl-ms", type=float, default=15.0)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--bulk-tokens", type=int, default=2000, help="tokens per capacity stream")
    parser.add_argument("--worker", choices=tuple(MODEL), help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(_worker(args.worker, args.api_base, args))
        return 0
    paths = [p.strip() for p in args.paths.split(",")]
    profiles = {
        "clock": SimProfile(ttft_ms=args.ttft_ms, itl_ms=args.itl_ms, output_tokens=args.tokens),
        "bulk": SimProfile(ttft_ms=0, itl_ms=0, output_tokens=args.bulk_tokens),
    }
    print(
        f"profile: TTFT {args.ttft_ms:g} ms, ITL {args.itl_ms:g} ms, {args.tokens} tokens, "
        f"jitter 0; {args.rounds} rounds per N (+1 warm-up). Client error in ms "
        "(client stamp − simulator's write stamp).\n"
    )
    columns = ("TTFT p50", "TTFT p99", "last p50", "last p99", "ITL p50", "ITL p99", "ok", "err")
    header = f"{'path':<18} {'N':>4} " + " ".join(f"{c:>9}" for c in columns) + "  clock"
    print(header)
    print("-" * len(header))
    rates: dict[str, float] = {}
    bare_rates: dict[str, float] = {}
    with SimProcess(profiles) as sim:
        for path in paths:
            for r in _run_worker(path, sim.api_base, args):
                if "chunks_per_s" in r:
                    rates[path], bare_rates[path] = r["chunks_per_s"], r["bare_chunks_per_s"]
                    continue
                if not r["ok"]:
                    print(f"{path:<18} {r['n']:>4}  every request failed: {r['message']}")
                    continue
                keys = ("ttft_p50", "ttft_p99", "last_p50", "last_p99", "itl_p50", "itl_p99")
                cells = " ".join(f"{r[k]:>9.2f}" for k in keys)
                print(
                    f"{path:<18} {r['n']:>4} {cells} {r['ok']:>9} {r['errors']:>9}"
                    f"  {r.get('clock', '')}",
                    flush=True,
                )
    print(
        "\nchunks/s read, 32 streams of the no-delay profile; ratio to a bare aiohttp client"
        " on the same dialect, measured right after the path in the same process"
    )
    for path in paths:
        print(
            f"{path:<18} {rates[path]:>10.0f}  {rates[path] / bare_rates[path]:>6.2f}x of "
            f"bare ({bare_rates[path]:.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
