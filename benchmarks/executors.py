"""Executors: client capacity of inline, processes ×2 and ray ×2 actors; the driver's cost.

Run from the repository root:  .venv/bin/python benchmarks/executors.py   (needs the ray extra)

Every client reads the same answers (``--tokens`` tokens, one per chunk) from the replay
server of ``client_capacity.py`` (the simulator's own bytes for that answer, one write per
response: the server costs microseconds, so the clients are the bottleneck), at the same
concurrency, one after the other:

* ``bare``: the minimal aiohttp SSE client of ``client_capacity.py``, in this process;
* ``inline``, ``processes ×2``, ``ray ×2``: ``harness run`` through :func:`execute` with
  the direct transport (``run.executor``; ray on a local cluster of 2 CPUs started here
  first, so the cluster's start is not counted, the actors' is).

Per client: streamed tokens/s over the sending span (first send to last byte, from the
rows), its ratio to ``bare`` in the same run, and the driver's CPU per request (this
process's CPU time over the whole run / requests: receiving rows and journaling them;
for inline it also sends). Then the journal alone (rows/s the driver can write), so that
Ray's overhead per request = ray's driver CPU per request − the journal's per row.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from client_capacity import _bare_one, _body, _record_events

from harness.sim import SimProcess, SimProfile


async def _bare(api_base: str, concurrency: int, requests: int, tokens: int) -> dict[str, Any]:
    url, body = f"{api_base}/chat/completions", _body(tokens)
    todo = iter(range(requests))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await _bare_one(session, url, body)  # warm-up

        async def worker() -> int:
            return sum([await _bare_one(session, url, body) for _ in todo])

        cpu, start = time.process_time(), time.perf_counter()
        chunks = sum(await asyncio.gather(*(worker() for _ in range(concurrency))))
        span = time.perf_counter() - start
    return {
        "tokens": chunks,
        "span_s": span,
        "driver_ms_per_request": (time.process_time() - cpu) * 1000 / requests,
    }


def _config(tmp: Path, name: str, api_base: str, args: argparse.Namespace, run: str) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            run: {{name: {name}, concurrency: {args.concurrency}, warmup_requests: 1{run}}}
            providers:
              - {{name: replay, model: openai/capacity, api_base: "{api_base}",
                  transport: direct, concurrency: {args.concurrency}}}
            suites:
              - name: capacity
                kind: latency
                prompts: ["Tell me a long story about the quick brown fox."]
                max_tokens: {args.tokens}
                requests: {args.requests}
                load: {{pattern: concurrency, levels: [{args.concurrency}]}}
            """
        )
    )
    return path


def _harness(config: Path, out: Path) -> dict[str, Any]:
    from harness.config.spec import load_config
    from harness.run.session import execute

    spec = load_config(config)
    cpu, wall = time.process_time(), time.perf_counter()
    result = execute(spec, out=out, show_progress=False)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    rows = pd.read_parquet(result.run_dir)
    assert (rows["status"] == "ok").all(), rows["error_message"].dropna().head()
    end = rows["started_at"] + pd.to_timedelta(rows["e2e_s"], unit="s")
    return {
        "tokens": int(rows["text_chunks"].sum()),
        "span_s": (end.max() - rows["started_at"].min()).total_seconds(),
        "driver_ms_per_request": cpu * 1000 / len(rows),
        "wall_s": wall,
        "clock_ok": float(rows["clock_ok"].mean()),
        "run_dir": result.run_dir,
    }


def _journal_rate(run_dir: Path, tmp: Path, n: int) -> float:
    """Rows/s through the driver's :class:`JournalWriter` (add and the final compaction),
    with rows as stored by a real run, repeated with new indices."""
    from harness.store.journal import JournalWriter
    from harness.store.parts import read_runs

    template = read_runs(run_dir.parent, [run_dir.name]).to_pylist()
    rows = [
        {
            **{k: v for k, v in template[i % len(template)].items() if k != "run_id"},
            "request_index": i,
        }
        for i in range(n)
    ]
    writer = JournalWriter(tmp / "journal", "j", flush_s=3600)
    start = time.perf_counter()
    for row in rows:
        writer.add(row)
    writer.close()
    return n / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--journal-rows", type=int, default=20000)
    args = parser.parse_args()
    print(
        f"{args.requests} requests of {args.tokens} tokens at concurrency {args.concurrency};"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    profile = SimProfile(ttft_ms=0, itl_ms=0, output_tokens=args.tokens, jitter=0.0)
    with SimProcess({"capacity": profile}) as sim:
        events = asyncio.run(_record_events(sim.api_base, args.tokens))
    here = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "events.json").write_text(json.dumps(events))
        server = subprocess.Popen(
            [
                sys.executable,
                str(here / "client_capacity.py"),
                "--replay-server",
                str(tmp / "events.json"),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert server.stdout is not None
            api_base = server.stdout.readline().split("listening on ", 1)[1].strip()
            results: dict[str, dict[str, Any]] = {}
            results["bare"] = asyncio.run(
                _bare(api_base, args.concurrency, args.requests, args.tokens)
            )
            runs = {
                "inline": "",
                "processes ×2": ", executor: processes, workers: 2",
                "ray ×2": ", executor: ray, ray: {actors: 2, cpus_per_actor: 1}",
            }
            for name, run in runs.items():
                if name.startswith("ray"):
                    import ray

                    started = time.perf_counter()
                    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning")
                    print(f"(local ray cluster started in {time.perf_counter() - started:.1f} s)")
                config = _config(tmp, name.split()[0], api_base, args, run)
                results[name] = _harness(config, tmp / "out")
            journal = _journal_rate(results["inline"]["run_dir"], tmp, args.journal_rows)
        finally:
            server.terminate()
            server.wait()
    bare = results["bare"]["tokens"] / results["bare"]["span_s"]
    print(
        f"\n{'client':14s} {'tokens/s':>10s} {'× bare':>7s} {'driver ms/req':>14s}"
        f" {'run wall s':>11s} {'clock_ok':>9s}"
    )
    for name, r in results.items():
        rate = r["tokens"] / r["span_s"]
        wall = f"{r['wall_s']:11.1f}" if "wall_s" in r else f"{'':11s}"
        ok = f"{r['clock_ok']:9.0%}" if "clock_ok" in r else f"{'':9s}"
        print(
            f"{name:14s} {rate:10.0f} {rate / bare:7.2f}"
            f" {r['driver_ms_per_request']:14.3f} {wall} {ok}"
        )
    per_row = 1000 / journal
    ray_driver = results["ray ×2"]["driver_ms_per_request"]
    print(f"\njournal alone: {journal:.0f} rows/s ({per_row:.3f} ms of driver CPU per row)")
    print(
        f"ray's overhead per request: {ray_driver:.3f} ms of driver CPU,"
        f" {ray_driver - per_row:.3f} ms beyond journaling the row"
    )
    print(f"host {socket.gethostname()}, load average at the end {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
