"""Client capacity: streamed chunks and requests per second one client process sustains.

Run from the repository root:  .venv/bin/python benchmarks/client_capacity.py

Three clients read the same answers (TTFT 0, ITL 0, 256 tokens) at the same
concurrency, each in a fresh process, one after the other:

* ``bare``: a minimal aiohttp SSE client written here (lines from
  ``resp.content``, ``json.loads`` per event, the delta's text): the baseline;
* ``direct``: :class:`harness.providers.direct.DirectClient`;
* ``litellm``: :func:`harness.providers.litellm.send`.

Two servers (``--server``):

* ``sim``: the real simulator (one Python process). At ITL 0 it awaits a write
  per chunk and is itself the bottleneck, so wall-clock rates measure it, not
  the client; the client's CPU time per chunk still measures the client.
* ``replay``: a minimal asyncio server, written here, that answers every request
  with the simulator's own bytes for that answer (recorded once from it) in a
  single write: what the simulator would do if it wrote all chunks at once
  when ``itl_ms`` is 0. It costs a few microseconds per request, so the client
  is the bottleneck.

Per client: chunks/s and requests/s over the wall clock, chunks per second of
client CPU (the rate if the client had a core to itself), the share of a core
the server used, and each figure's ratio to ``bare`` from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from harness.sim import SimProcess, SimProfile

CLIENTS = ("bare", "direct", "litellm")
PROMPT = "Tell me a long story about the quick brown fox that jumps over the lazy dog."
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the clients (run in a worker process) ------------------------------------------


def _body(tokens: int) -> dict[str, Any]:
    return {
        "model": "capacity",
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def _bare_one(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> int:
    """The minimal SSE client: returns the number of text chunks read."""
    chunks = 0
    async with session.post(url, json=body) as resp:
        resp.raise_for_status()
        async for line in resp.content:
            if not line.startswith(b"data: "):
                continue
            payload = line[6:].strip()
            if payload == b"[DONE]":
                break
            event = json.loads(payload)
            for choice in event.get("choices") or ():
                if choice["delta"].get("content"):
                    chunks += 1
    return chunks


async def _worker(
    client: str, api_base: str, concurrency: int, duration: float, tokens: int
) -> None:
    """Run one client for ``duration`` seconds; print 'start' then a JSON result line."""
    from harness.providers.direct import DirectClient
    from harness.providers.litellm import import_litellm, send
    from harness.providers.trace import Endpoint
    from harness.request import RequestSpec

    endpoint = Endpoint(
        provider="sim",
        model="openai/capacity",
        simulated=True,
        api_base=api_base,
        api_key="sim-no-key",
        params={},
        timeout_s=300.0,
        transport=client,
    )
    spec = RequestSpec(
        suite="capacity",
        suite_kind="latency",
        case_id="c0",
        repeat=0,
        provider="sim",
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=tokens,
    )
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    direct = DirectClient()
    litellm = import_litellm() if client == "litellm" else None
    url = f"{api_base}/chat/completions"
    body = _body(tokens)

    async def one() -> int:
        """Text chunks of one request; -1 for a failed request."""
        if client == "bare":
            return await _bare_one(session, url, body)
        if client == "direct":
            row = await direct.send(endpoint, spec)
        else:
            row = await send(litellm, endpoint, spec)
        return int(row["text_chunks"]) if row["status"] == "ok" else -1

    counts = {"chunks": 0, "requests": 0, "errors": 0}

    async def loop(deadline: float) -> None:
        while time.perf_counter() < deadline:
            n = await one()
            if n < 0:
                counts["errors"] += 1
            else:
                counts["chunks"] += n
                counts["requests"] += 1

    # Warm-up: open the connections, and litellm's first-call setup.
    await asyncio.gather(*(loop(time.perf_counter() + 1.0) for _ in range(concurrency)))
    counts.update(chunks=0, requests=0, errors=0)
    print("start", flush=True)
    wall, cpu = time.perf_counter(), time.process_time()
    deadline = wall + duration
    await asyncio.gather(*(loop(deadline) for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await session.close()
    await direct.close()
    print(json.dumps({**counts, "wall_s": wall, "cpu_s": cpu}), flush=True)


# --- the replay server (run in a server process) ------------------------------------


class _Replay(asyncio.Protocol):
    """HTTP/1.1 keep-alive; every request gets the same prebuilt response in one write."""

    def __init__(self, response: bytes) -> None:
        self.response = response
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            length = 0
            for line in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return  # the body is still arriving
            self.buffer = self.buffer[end + 4 + length :]
            assert self.transport is not None
            self.transport.write(self.response)


async def _serve_replay(events: list[str]) -> None:
    # One HTTP chunk per event, as the simulator's aiohttp server sends them.
    parts = [b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"]
    parts.append(b"Transfer-Encoding: chunked\r\n\r\n")
    for event in events:
        data = event.encode()
        parts.append(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    parts.append(b"0\r\n\r\n")
    response = b"".join(parts)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Replay(response), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"listening on http://127.0.0.1:{port}/v1", flush=True)
    await server.serve_forever()


async def _record_events(api_base: str, tokens: int) -> list[str]:
    """The simulator's SSE events for the benchmark's request, as it sends them."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{api_base}/chat/completions", json=_body(tokens)) as resp,
    ):
        text = (await resp.read()).decode()
    return [event + "\n\n" for event in text.split("\n\n") if event]


# --- the parent: servers, workers, table --------------------------------------------


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _pin(pid: int, cpu: int) -> None:
    """Keep a process on one CPU (when there are two or more).

    Left alone, Linux tends to wake a loopback reader on its writer's CPU, so
    client and server share one core, each at ~50%, and neither rate means
    much; pinned, each has a core of its own.
    """
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(pid, {cpu})


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        pids.update(int(p) for p in (task / "children").read_text().split())
    return pids


def _run_client(
    client: str, api_base: str, server_pid: int, args: argparse.Namespace
) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--worker", client, "--api-base", api_base]
    cmd += ["--concurrency", str(args.concurrency), "--duration", str(args.duration)]
    cmd += ["--tokens", str(args.tokens)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    _pin(proc.pid, 0)
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "start":
        proc.wait()
        raise RuntimeError(f"{client} worker failed to start")
    ticks, wall = _cpu_ticks(server_pid), time.perf_counter()
    result: dict[str, Any] = json.loads(proc.stdout.readline())
    server_cpu = (_cpu_ticks(server_pid) - ticks) / CLK_TCK
    result["server_share"] = server_cpu / (time.perf_counter() - wall)
    proc.wait()
    return result


def _table(server: str, results: dict[str, dict[str, Any]]) -> None:
    def rate(r: dict[str, Any], key: str, per: str) -> float:
        return float(r[key]) / float(r[per]) if r[per] else 0.0

    base = results.get("bare")
    print(
        f"\nserver: {server}\n{'client':<8} {'chunks/s':>10} {'req/s':>8} {'chunks/cpu-s':>13} "
        f"{'client cpu':>11} {'server cpu':>11} {'errors':>6}  {'x bare (wall)':>13} "
        f"{'x bare (cpu)':>12}"
    )
    for name, r in results.items():
        wall_rate, cpu_rate = rate(r, "chunks", "wall_s"), rate(r, "chunks", "cpu_s")
        ratios = ""
        if base is not None:
            ratios = (
                f"{wall_rate / rate(base, 'chunks', 'wall_s'):>13.2f} "
                f"{cpu_rate / rate(base, 'chunks', 'cpu_s'):>12.2f}"
            )
        print(
            f"{name:<8} {wall_rate:>10,.0f} {rate(r, 'requests', 'wall_s'):>8,.1f} "
            f"{cpu_rate:>13,.0f} {r['cpu_s'] / r['wall_s']:>11.0%} {r['server_share']:>11.0%} "
            f"{r['errors']:>6}  {ratios}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--server", default="sim,replay", help="comma-separated: sim, replay")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per client")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--api-base", help=argparse.SUPPRESS)
    parser.add_argument("--replay-server", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_server:
        asyncio.run(_serve_replay(json.loads(args.replay_server.read_text())))
        return 0
    if args.worker:
        asyncio.run(
            _worker(args.worker, args.api_base, args.concurrency, args.duration, args.tokens)
        )
        return 0

    clients = [c.strip() for c in args.clients.split(",")]
    servers = [s.strip() for s in args.server.split(",")]
    print(
        f"{args.tokens}-token answers, TTFT 0, ITL 0, concurrency {args.concurrency}, "
        f"{args.duration:g} s per client, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    profile = SimProfile(ttft_ms=0, itl_ms=0, output_tokens=args.tokens, jitter=0.0)
    with SimProcess({"capacity": profile}) as sim:
        (sim_pid,) = _children()
        _pin(sim_pid, 1)
        if "sim" in servers:
            _table("sim", {c: _run_client(c, sim.api_base, sim_pid, args) for c in clients})
        if "replay" in servers:
            events = asyncio.run(_record_events(sim.api_base, args.tokens))
    if "replay" in servers:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(events, f)
        cmd = [sys.executable, __file__, "--replay-server", f.name]
        server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        _pin(server.pid, 1)
        try:
            assert server.stdout is not None
            api_base = server.stdout.readline().split("listening on ", 1)[1].strip()
            results = {c: _run_client(c, api_base, server.pid, args) for c in clients}
            _table(f"replay ({len(events)} events per answer, one write)", results)
        finally:
            server.terminate()
            server.wait()
            os.unlink(f.name)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    print("chunks = text chunks (one token each); chunks/cpu-s = chunks / client CPU seconds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
